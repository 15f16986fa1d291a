"""Attachment SQL: uploads, attaching them to a message, who may read one, clean-up."""
from __future__ import annotations

import datetime as dt

from ..db import Executor, Row

COLUMNS = "a.id, a.uploader_id, a.message_id, a.position, a.kind, a.mime_type, a.size, a.name," \
          " a.width, a.height, a.has_thumbnail"


def _marks(values: list) -> str:
    return ", ".join(["%s"] * len(values))


async def lock_uploader(db: Executor, user_id: str) -> Row | None:
    """Serialises one user's uploads, so that two at once cannot both pass the quota."""
    return await db.fetch_one("SELECT id FROM users WHERE id = %s FOR UPDATE", (user_id,))


async def bytes_stored_by(db: Executor, user_id: str) -> int:
    row = await db.fetch_one(
        "SELECT COALESCE(SUM(size), 0) AS total FROM attachments WHERE uploader_id = %s", (user_id,))
    return int(row["total"]) if row else 0


async def insert_attachment(db: Executor, *, attachment_id: str, uploader_id: str, kind: str,
                            mime_type: str, size: int, name: str, width: int | None,
                            height: int | None, has_thumbnail: bool, now: dt.datetime) -> int:
    return await db.execute(
        "INSERT INTO attachments (id, uploader_id, kind, mime_type, size, name, width, height,"
        " has_thumbnail, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (attachment_id, uploader_id, kind, mime_type, size, name, width, height,
         int(has_thumbnail), now))


async def attach_to_message(db: Executor, message_id: str, uploader_id: str,
                            attachment_ids: list[str]) -> int:
    """Claims the uploader's unattached uploads for a message, in the order given; how many
    were claimed (fewer than asked: some are not theirs, unknown or already used)."""
    marks = _marks(attachment_ids)
    return await db.execute(
        f"UPDATE attachments SET message_id = %s, position = FIELD(id, {marks})"
        f" WHERE id IN ({marks}) AND uploader_id = %s AND message_id IS NULL",
        (message_id, *attachment_ids, *attachment_ids, uploader_id))


async def mark_message(db: Executor, message_id: str) -> int:
    """The message carries attachments (``messages.has_attachments``, read with history)."""
    return await db.execute("UPDATE messages SET has_attachments = 1 WHERE id = %s", (message_id,))


async def for_messages(db: Executor, message_ids: list[str]) -> list[Row]:
    """The attachments of these messages, in message then position order."""
    if not message_ids:
        return []
    return await db.fetch_all(
        f"SELECT {COLUMNS} FROM attachments a WHERE a.message_id IN ({_marks(message_ids)})"
        " ORDER BY a.message_id, a.position", tuple(message_ids))


async def readable_attachment(db: Executor, attachment_id: str, user_id: str) -> Row | None:
    """The attachment if ``user_id`` may read it: its uploader before it is sent; after, the
    participants of its 1-on-1 conversation or the current members of its group."""
    return await db.fetch_one(
        f"SELECT {COLUMNS} FROM attachments a"
        " LEFT JOIN messages m ON m.id = a.message_id"
        " LEFT JOIN conversations c ON c.id = m.conversation_id"
        " WHERE a.id = %(id)s AND ("
        "   (a.message_id IS NULL AND a.uploader_id = %(me)s)"
        "   OR c.user_low_id = %(me)s OR c.user_high_id = %(me)s"
        "   OR EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = m.group_id"
        "              AND gm.user_id = %(me)s))",
        {"id": attachment_id, "me": user_id})


async def attachment_by_id(db: Executor, attachment_id: str) -> Row | None:
    return await db.fetch_one(f"SELECT {COLUMNS} FROM attachments a WHERE a.id = %s", (attachment_id,))


async def ids_of_message(db: Executor, message_id: str) -> list[str]:
    rows = await db.fetch_all("SELECT id FROM attachments WHERE message_id = %s", (message_id,))
    return [row["id"] for row in rows]


async def ids_of_uploader(db: Executor, user_id: str) -> list[str]:
    rows = await db.fetch_all("SELECT id FROM attachments WHERE uploader_id = %s", (user_id,))
    return [row["id"] for row in rows]


async def delete_attachments(db: Executor, attachment_ids: list[str]) -> int:
    if not attachment_ids:
        return 0
    return await db.execute(f"DELETE FROM attachments WHERE id IN ({_marks(attachment_ids)})",
                            tuple(attachment_ids))


async def unattached_before(db: Executor, cutoff: dt.datetime, limit: int) -> list[str]:
    rows = await db.fetch_all(
        "SELECT id FROM attachments WHERE message_id IS NULL AND created_at < %s LIMIT %s",
        (cutoff, limit))
    return [row["id"] for row in rows]


async def existing_ids(db: Executor, attachment_ids: list[str]) -> set[str]:
    if not attachment_ids:
        return set()
    rows = await db.fetch_all(f"SELECT id FROM attachments WHERE id IN ({_marks(attachment_ids)})",
                              tuple(attachment_ids))
    return {row["id"] for row in rows}
