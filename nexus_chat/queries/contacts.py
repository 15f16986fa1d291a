"""Contacts: a private address book (docs/api.md#contacts)."""
from __future__ import annotations

import datetime as dt

from ..db import Executor, Row
from ..shapes import public_columns

_SELECT = ("SELECT c.id, c.owner_id, c.contact_user_id, c.alias, c.created_at, c.updated_at, "
           + public_columns("u", "cu_")
           + " FROM contacts c JOIN users u ON u.id = c.contact_user_id")


async def insert_contact(db: Executor, *, contact_id: str, owner_id: str, contact_user_id: str,
                         alias: str, now: dt.datetime) -> None:
    await db.execute(
        "INSERT INTO contacts (id, owner_id, contact_user_id, alias, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)", (contact_id, owner_id, contact_user_id, alias, now, now))


async def contact_exists(db: Executor, owner_id: str, contact_user_id: str) -> bool:
    row = await db.fetch_one("SELECT 1 AS found FROM contacts WHERE owner_id = %s AND contact_user_id = %s",
                             (owner_id, contact_user_id))
    return row is not None


async def contact_of_owner(db: Executor, contact_id: str, owner_id: str) -> Row | None:
    return await db.fetch_one(f"{_SELECT} WHERE c.id = %s AND c.owner_id = %s", (contact_id, owner_id))


async def contacts_of_owner(db: Executor, owner_id: str) -> list[Row]:
    return await db.fetch_all(f"{_SELECT} WHERE c.owner_id = %s ORDER BY c.alias, c.created_at, c.id",
                              (owner_id,))


async def update_alias(db: Executor, contact_id: str, owner_id: str, alias: str, now: dt.datetime) -> int:
    return await db.execute("UPDATE contacts SET alias = %s, updated_at = %s WHERE id = %s AND owner_id = %s",
                            (alias, now, contact_id, owner_id))


async def delete_contact(db: Executor, contact_id: str, owner_id: str) -> int:
    return await db.execute("DELETE FROM contacts WHERE id = %s AND owner_id = %s", (contact_id, owner_id))
