"""Deleting an account (API.md §9)."""
from __future__ import annotations

from ..context import AppContext
from ..queries import users


async def delete_account(ctx: AppContext, user_id: str) -> None:
    # Rows that reference the user cascade (sessions, contacts both ways, conversations and
    # their messages, memberships, stories, views); group messages keep a NULL sender.
    await users.delete_user(ctx.db, user_id)
    ctx.revoked_users.add(user_id)
    ctx.realtime.disconnect_user(user_id)
