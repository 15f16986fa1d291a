from __future__ import annotations

from ..db import Executor


async def group_ids_for_user(db: Executor, user_id: str) -> list[str]:
    rows = await db.fetch_all("SELECT group_id FROM group_members WHERE user_id = %s", (user_id,))
    return [row["group_id"] for row in rows]


async def member_role(db: Executor, group_id: str, user_id: str) -> str | None:
    """The user's role in the group, or None when not a member."""
    row = await db.fetch_one("SELECT role FROM group_members WHERE group_id = %s AND user_id = %s",
                             (group_id, user_id))
    return row["role"] if row else None
