"""Stories and their views (docs/api.md#stories). Every read of a story filters on
``expires_at > now``, so an expired story is never served, even between two sweeps."""
from __future__ import annotations

import datetime as dt

from ..db import Executor, Row
from ..shapes import short_columns

_STORY = "s.id, s.user_id, s.image_url, s.video_url, s.caption, s.expires_at, s.created_at, s.updated_at"
# Both directions of the contact relation: the viewer has the owner, the owner has the viewer.
_MUTUAL = (" JOIN contacts mine ON mine.owner_id = %s AND mine.contact_user_id = s.user_id"
           " JOIN contacts theirs ON theirs.owner_id = s.user_id AND theirs.contact_user_id = mine.owner_id")


async def insert_story(db: Executor, *, story_id: str, user_id: str, image_url: str | None,
                       video_url: str | None, caption: str | None, now: dt.datetime,
                       expires_at: dt.datetime) -> None:
    await db.execute(
        "INSERT INTO stories (id, user_id, image_url, video_url, caption, expires_at, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (story_id, user_id, image_url, video_url, caption, expires_at, now, now))


async def active_story_with_owner(db: Executor, story_id: str, now: dt.datetime) -> Row | None:
    return await db.fetch_one(
        f"SELECT {_STORY}, {short_columns('u', 'user_')} FROM stories s JOIN users u ON u.id = s.user_id"
        " WHERE s.id = %s AND s.expires_at > %s", (story_id, now))


async def active_stories_of(db: Executor, user_id: str, now: dt.datetime) -> list[Row]:
    """The user's active stories, oldest first, with their view counts."""
    return await db.fetch_all(
        f"SELECT {_STORY}, {short_columns('u', 'user_')},"
        " (SELECT COUNT(*) FROM story_views v WHERE v.story_id = s.id) AS views_count"
        " FROM stories s JOIN users u ON u.id = s.user_id"
        " WHERE s.user_id = %s AND s.expires_at > %s ORDER BY s.created_at, s.id", (user_id, now))


async def feed_for(db: Executor, viewer_id: str, now: dt.datetime) -> list[Row]:
    """Active stories of the viewer's mutual contacts, oldest first, with the viewer's alias
    for each owner and whether the viewer has seen it."""
    return await db.fetch_all(
        f"SELECT {_STORY}, {short_columns('u', 'user_')}, mine.alias AS alias,"
        " EXISTS (SELECT 1 FROM story_views v WHERE v.story_id = s.id AND v.viewer_id = mine.owner_id) AS seen"
        f" FROM stories s JOIN users u ON u.id = s.user_id{_MUTUAL}"
        " WHERE s.expires_at > %s ORDER BY s.created_at, s.id", (viewer_id, now))


async def visible_story(db: Executor, story_id: str, viewer_id: str, now: dt.datetime) -> Row | None:
    """The story if it is active and its owner and the viewer are mutual contacts."""
    return await db.fetch_one(
        f"SELECT {_STORY} FROM stories s{_MUTUAL} WHERE s.id = %s AND s.expires_at > %s",
        (viewer_id, story_id, now))


async def insert_view(db: Executor, story_id: str, viewer_id: str, now: dt.datetime) -> int:
    """1 for a first view, 0 when already seen (the first time is kept)."""
    return await db.execute(
        "INSERT IGNORE INTO story_views (story_id, viewer_id, seen_at) VALUES (%s, %s, %s)",
        (story_id, viewer_id, now))


async def viewers_of(db: Executor, story_id: str, owner_id: str) -> list[Row]:
    """Who saw the story, newest first, with the owner's alias for each viewer (if any)."""
    return await db.fetch_all(
        f"SELECT v.seen_at, {short_columns('u', 'user_')}, c.alias AS alias"
        " FROM story_views v JOIN users u ON u.id = v.viewer_id"
        " LEFT JOIN contacts c ON c.owner_id = %s AND c.contact_user_id = v.viewer_id"
        " WHERE v.story_id = %s ORDER BY v.seen_at DESC, u.username", (owner_id, story_id))


async def story_of_owner(db: Executor, story_id: str, owner_id: str) -> Row | None:
    return await db.fetch_one(f"SELECT {_STORY} FROM stories s WHERE s.id = %s AND s.user_id = %s",
                              (story_id, owner_id))


async def delete_story(db: Executor, story_id: str) -> int:
    """Its views go with it (FK cascade)."""
    return await db.execute("DELETE FROM stories WHERE id = %s", (story_id,))


async def expired_stories(db: Executor, now: dt.datetime, limit: int) -> list[Row]:
    return await db.fetch_all(
        "SELECT id, image_url, video_url FROM stories WHERE expires_at <= %s ORDER BY expires_at LIMIT %s",
        (now, limit))


async def delete_stories(db: Executor, story_ids: list[str]) -> int:
    if not story_ids:
        return 0
    marks = ", ".join(["%s"] * len(story_ids))
    return await db.execute(f"DELETE FROM stories WHERE id IN ({marks})", tuple(story_ids))


async def media_of_user(db: Executor, user_id: str) -> list[Row]:
    return await db.fetch_all("SELECT id, image_url, video_url FROM stories WHERE user_id = %s FOR UPDATE",
                              (user_id,))


async def delete_stories_of_user(db: Executor, user_id: str) -> int:
    return await db.execute("DELETE FROM stories WHERE user_id = %s", (user_id,))
