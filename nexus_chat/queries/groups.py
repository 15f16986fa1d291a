from __future__ import annotations

import datetime as dt

from ..db import Executor, Row, Transaction
from ..shapes import short_columns


async def group_ids_for_user(db: Executor, user_id: str) -> list[str]:
    rows = await db.fetch_all("SELECT group_id FROM group_members WHERE user_id = %s", (user_id,))
    return [row["group_id"] for row in rows]


async def member_role(db: Executor, group_id: str, user_id: str) -> str | None:
    """The user's role in the group, or None when not a member."""
    row = await db.fetch_one("SELECT role FROM group_members WHERE group_id = %s AND user_id = %s",
                             (group_id, user_id))
    return row["role"] if row else None


# ---- groups (docs/api.md#groups) -----------------------------------------------------------------
GROUP_COLUMNS = {"name": "name", "description": "description", "icon_url": "icon_url"}

_GROUP_SELECT = (
    "SELECT g.id, g.name, g.description, g.icon_url, g.owner_id, g.created_at, g.updated_at,"
    " (SELECT COUNT(*) FROM group_members c WHERE c.group_id = g.id) AS members_count,"
    " me.role AS my_role, " + short_columns("o", "owner_")
    + " FROM chat_groups g JOIN users o ON o.id = g.owner_id"
)


async def insert_group(db: Executor, *, group_id: str, name: str, description: str | None,
                       icon_url: str | None, owner_id: str, now: dt.datetime) -> None:
    await db.execute(
        "INSERT INTO chat_groups (id, name, description, icon_url, owner_id, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)", (group_id, name, description, icon_url, owner_id, now, now))


async def insert_members(tx: Transaction, group_id: str, user_ids: list[str], role: str,
                         now: dt.datetime) -> int:
    """Adds members; existing memberships are left as they are. Returns the number added."""
    if not user_ids:
        return 0
    return await tx.execute_many(
        "INSERT IGNORE INTO group_members (group_id, user_id, role, joined_at) VALUES (%s, %s, %s, %s)",
        [(group_id, user_id, role, now) for user_id in user_ids])


async def group_for_viewer(db: Executor, group_id: str, viewer_id: str) -> Row | None:
    """The group with its owner, member count and the viewer's role (None when not a member)."""
    return await db.fetch_one(
        f"{_GROUP_SELECT} LEFT JOIN group_members me ON me.group_id = g.id AND me.user_id = %s"
        " WHERE g.id = %s", (viewer_id, group_id))


async def groups_of_member(db: Executor, user_id: str) -> list[Row]:
    """The user's groups, newest first."""
    return await db.fetch_all(
        f"{_GROUP_SELECT} JOIN group_members me ON me.group_id = g.id AND me.user_id = %s"
        " ORDER BY g.created_at DESC, g.id", (user_id,))


async def lock_group(db: Executor, group_id: str) -> Row | None:
    """The group row, locked for the rest of the transaction (serialises role changes)."""
    return await db.fetch_one("SELECT id, owner_id, icon_url FROM chat_groups WHERE id = %s FOR UPDATE",
                              (group_id,))


async def update_group(db: Executor, group_id: str, changes: dict, now: dt.datetime) -> int:
    columns = [GROUP_COLUMNS[key] for key in changes]  # KeyError on anything else
    assignments = "".join(f"{column} = %s, " for column in columns)
    return await db.execute(f"UPDATE chat_groups SET {assignments}updated_at = %s WHERE id = %s",
                            (*changes.values(), now, group_id))


async def set_group_owner(db: Executor, group_id: str, owner_id: str, now: dt.datetime) -> int:
    return await db.execute("UPDATE chat_groups SET owner_id = %s, updated_at = %s WHERE id = %s",
                            (owner_id, now, group_id))


async def delete_group(db: Executor, group_id: str) -> int:
    """Its memberships and messages go with it (FK cascade)."""
    return await db.execute("DELETE FROM chat_groups WHERE id = %s", (group_id,))


async def set_member_role(db: Executor, group_id: str, user_id: str, role: str) -> int:
    return await db.execute("UPDATE group_members SET role = %s WHERE group_id = %s AND user_id = %s",
                            (role, group_id, user_id))


async def delete_member(db: Executor, group_id: str, user_id: str) -> int:
    return await db.execute("DELETE FROM group_members WHERE group_id = %s AND user_id = %s",
                            (group_id, user_id))


async def members_among(db: Executor, group_id: str, user_ids: list[str]) -> set[str]:
    if not user_ids:
        return set()
    marks = ", ".join(["%s"] * len(user_ids))
    rows = await db.fetch_all(
        f"SELECT user_id FROM group_members WHERE group_id = %s AND user_id IN ({marks})",
        (group_id, *user_ids))
    return {row["user_id"] for row in rows}


async def member_count(db: Executor, group_id: str) -> int:
    row = await db.fetch_one("SELECT COUNT(*) AS n FROM group_members WHERE group_id = %s", (group_id,))
    return int(row["n"]) if row else 0


async def members_of(db: Executor, group_id: str) -> list[Row]:
    """Members with their UserShort columns: owner, admins, members; longest-standing first."""
    return await db.fetch_all(
        "SELECT m.role, m.joined_at, " + short_columns("u", "user_")
        + " FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = %s"
        " ORDER BY FIELD(m.role, 'owner', 'admin', 'member'), m.joined_at, u.username", (group_id,))


async def groups_owned_by(db: Executor, user_id: str) -> list[Row]:
    return await db.fetch_all("SELECT id, icon_url FROM chat_groups WHERE owner_id = %s FOR UPDATE",
                              (user_id,))


async def successor(db: Executor, group_id: str, leaving_user_id: str) -> str | None:
    """The longest-standing admin, else the longest-standing member (never the one leaving)."""
    row = await db.fetch_one(
        "SELECT user_id FROM group_members WHERE group_id = %s AND user_id <> %s"
        " ORDER BY FIELD(role, 'admin', 'member', 'owner'), joined_at, user_id LIMIT 1",
        (group_id, leaving_user_id))
    return row["user_id"] if row else None


async def member_with_user(db: Executor, group_id: str, user_id: str) -> Row | None:
    return await db.fetch_one(
        "SELECT m.role, m.joined_at, " + short_columns("u", "user_")
        + " FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = %s AND m.user_id = %s",
        (group_id, user_id))
