"""Stories (docs/api.md#stories): they live ``settings.stories_ttl_s`` (UTC); only mutual contacts
see and mark them; expired ones are never served (the sweeper deletes them later)."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from .. import uploads
from ..context import AppContext
from ..db import Row
from ..errors import forbidden, not_found, validation_failed
from ..jsonutil import iso, utcnow
from ..queries import stories, users
from ..shapes import user_short

STORY_NOT_FOUND = "Story not found"


def story_shape(row: Row, alias: str | None = None) -> dict[str, Any]:
    user = user_short(row, "user_")
    if user is not None and alias:
        user["fullName"] = alias
    return {
        "id": row["id"],
        "imageUrl": row["image_url"],
        "videoUrl": row["video_url"],
        "caption": row["caption"],
        "expiresAt": iso(row["expires_at"]),
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "user": user,
    }


async def create(ctx: AppContext, user_id: str, *, caption: str | None, image: uploads.Source | None,
                 video: uploads.Source | None) -> dict[str, Any]:
    caption = caption if caption and caption.strip() else None
    if image is not None and video is not None:
        raise validation_failed(["body: Send one file: image or video, not both."])
    if image is None and video is None and caption is None:
        raise validation_failed(["body: A story needs an image, a video or a caption."])
    owner = await users.user_by_id(ctx.db, user_id)
    if owner is None:
        raise not_found("User not found")
    image_url = video_url = None
    if image is not None:
        image_url = await uploads.save_image(ctx.media, ctx.public_dir, uploads.STORIES, "image", image, uploads.STORY_MAX,
                                             ctx.settings.uploads_story_image_max_px)
    if video is not None:
        video_url = await uploads.save_video(ctx.media, ctx.public_dir, uploads.STORIES, "video", video, uploads.STORY_MAX)
    story_id = str(uuid.uuid4())
    now = utcnow()
    expires_at = now + dt.timedelta(seconds=ctx.settings.stories_ttl_s)
    try:
        await stories.insert_story(ctx.db, story_id=story_id, user_id=user_id, image_url=image_url,
                                   video_url=video_url, caption=caption, now=now, expires_at=expires_at)
    except BaseException:
        await uploads.remove(ctx.public_dir, image_url, video_url)
        raise
    row = {"id": story_id, "image_url": image_url, "video_url": video_url, "caption": caption,
           "expires_at": expires_at, "created_at": now, "updated_at": now,
           **{f"user_{key}": owner[key] for key in ("id", "username", "full_name", "avatar_url")}}
    return story_shape(row)


async def mine(ctx: AppContext, user_id: str) -> list[dict[str, Any]]:
    rows = await stories.active_stories_of(ctx.db, user_id, utcnow())
    return [{**story_shape(row), "viewsCount": int(row["views_count"])} for row in rows]


async def feed(ctx: AppContext, user_id: str) -> list[dict[str, Any]]:
    rows = await stories.feed_for(ctx.db, user_id, utcnow())
    return [{**story_shape(row, row["alias"]), "seen": bool(row["seen"])} for row in rows]


async def delete(ctx: AppContext, user_id: str, story_id: str) -> None:
    row = await stories.story_of_owner(ctx.db, story_id, user_id)
    if row is None or not await stories.delete_story(ctx.db, story_id):
        raise not_found(STORY_NOT_FOUND)
    await uploads.remove(ctx.public_dir, row["image_url"], row["video_url"])


async def mark_seen(ctx: AppContext, user_id: str, story_id: str) -> None:
    now = utcnow()
    story = await stories.active_story_with_owner(ctx.db, story_id, now)
    if story is None:
        raise not_found(STORY_NOT_FOUND)
    if story["user_id"] == user_id:
        return  # the owner's own view is not counted
    if await stories.visible_story(ctx.db, story_id, user_id, now) is None:
        raise not_found(STORY_NOT_FOUND)
    await stories.insert_view(ctx.db, story_id, user_id, now)


async def viewers(ctx: AppContext, user_id: str, story_id: str) -> list[dict[str, Any]]:
    story = await stories.active_story_with_owner(ctx.db, story_id, utcnow())
    if story is None:
        raise not_found(STORY_NOT_FOUND)
    if story["user_id"] != user_id:
        raise forbidden("Only the owner of a story can see its viewers")
    rows = await stories.viewers_of(ctx.db, story_id, user_id)
    return [{"seenAt": iso(row["seen_at"]), "user": _aliased(user_short(row, "user_"), row["alias"])}
            for row in rows]


def _aliased(user: dict[str, Any] | None, alias: str | None) -> dict[str, Any] | None:
    if user is not None and alias:
        user["fullName"] = alias
    return user
