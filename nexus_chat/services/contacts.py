"""Contacts (docs/api.md#contacts): a private address book; the added user is not told."""
from __future__ import annotations

import uuid
from typing import Any

from ..context import AppContext
from ..db import Row, is_duplicate_key
from ..errors import bad_request, conflict, not_found
from ..jsonutil import iso, utcnow
from ..queries import contacts, users
from ..shapes import user_public

CONTACT_NOT_FOUND = "Contact not found"
DUPLICATE = "Contact already exists in your list"


def contact_shape(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "alias": row["alias"],
        "userId": row["owner_id"],   # the owner, as in the old backend; contactUser is the other
        "contactUser": user_public(row, "cu_"),
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }


async def add(ctx: AppContext, owner_id: str, contact_user_id: str, alias: str | None) -> dict[str, Any]:
    if contact_user_id == owner_id:
        raise bad_request("You cannot add yourself as a contact")
    target = await users.user_by_id(ctx.db, contact_user_id)
    if target is None:
        raise not_found("User not found")
    if await contacts.contact_exists(ctx.db, owner_id, contact_user_id):
        raise conflict(DUPLICATE)
    contact_id = str(uuid.uuid4())
    try:
        await contacts.insert_contact(ctx.db, contact_id=contact_id, owner_id=owner_id,
                                      contact_user_id=contact_user_id,
                                      alias=alias or target["full_name"], now=utcnow())
    except Exception as exc:
        if is_duplicate_key(exc):  # the same contact added twice at once
            raise conflict(DUPLICATE) from None
        raise
    return await get(ctx, owner_id, contact_id)


async def list_all(ctx: AppContext, owner_id: str) -> list[dict[str, Any]]:
    return [contact_shape(row) for row in await contacts.contacts_of_owner(ctx.db, owner_id)]


async def get(ctx: AppContext, owner_id: str, contact_id: str) -> dict[str, Any]:
    row = await contacts.contact_of_owner(ctx.db, contact_id, owner_id)
    if row is None:
        raise not_found(CONTACT_NOT_FOUND)
    return contact_shape(row)


async def rename(ctx: AppContext, owner_id: str, contact_id: str, alias: str) -> dict[str, Any]:
    if await contacts.contact_of_owner(ctx.db, contact_id, owner_id) is None:
        raise not_found(CONTACT_NOT_FOUND)
    await contacts.update_alias(ctx.db, contact_id, owner_id, alias, utcnow())
    return await get(ctx, owner_id, contact_id)


async def remove(ctx: AppContext, owner_id: str, contact_id: str) -> None:
    if not await contacts.delete_contact(ctx.db, contact_id, owner_id):
        raise not_found(CONTACT_NOT_FOUND)
