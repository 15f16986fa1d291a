"""Users (docs/api.md#users): search and profile update (with the avatar upload)."""
from __future__ import annotations

from typing import Any

from .. import uploads
from ..context import AppContext
from ..db import is_duplicate_key
from ..errors import conflict, not_found
from ..jsonutil import utcnow
from ..queries import users
from ..shapes import user_public, user_self

USERNAME_TAKEN = "Username is already taken"
SEARCH_LIMIT = 20


async def search(ctx: AppContext, viewer_id: str, text: str) -> list[dict[str, Any]]:
    rows = await users.search_users(ctx.db, viewer_id, text, SEARCH_LIMIT)
    return [{**user_public(row), "isVerified": row["email_verified_at"] is not None,
             "isContact": bool(row["is_contact"])} for row in rows]


async def update_profile(ctx: AppContext, user_id: str, *, username: str | None = None,
                         full_name: str | None = None, bio: Any = ..., avatar: uploads.Source | None = None,
                         send_read_receipts: bool | None = None) -> dict[str, Any]:
    """``bio``: ``...`` leaves it, None clears it. ``avatar``: the uploaded bytes, if any."""
    current = await users.user_by_id(ctx.db, user_id)
    if current is None:
        raise not_found("User not found")
    changes: dict[str, Any] = {}
    if username is not None and username != current["username"]:
        if await users.username_taken(ctx.db, username, user_id):
            raise conflict(USERNAME_TAKEN)
        changes["username"] = username
    if full_name is not None:
        changes["full_name"] = full_name
    if bio is not ...:
        changes["bio"] = bio or None
    if send_read_receipts is not None:
        changes["send_read_receipts"] = send_read_receipts
    new_avatar = None
    if avatar is not None:
        new_avatar = await uploads.save_image(ctx.media, ctx.public_dir, uploads.AVATARS, "avatar", avatar,
                                              uploads.AVATAR_MAX, ctx.settings.uploads_image_max_px)
        changes["avatar_url"] = new_avatar
    try:
        if changes:
            await users.update_profile(ctx.db, user_id, changes, utcnow())
    except Exception as exc:
        await uploads.remove(ctx.public_dir, new_avatar)
        if is_duplicate_key(exc):  # lost a race for the username
            raise conflict(USERNAME_TAKEN) from None
        raise
    if new_avatar and current["avatar_url"]:
        await uploads.remove(ctx.public_dir, current["avatar_url"])
    return user_self(await users.user_by_id(ctx.db, user_id))
