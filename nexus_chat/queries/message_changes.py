"""SQL of changes to a stored message: who may touch it, edits and their history, tombstones."""
from __future__ import annotations

import datetime as dt

from ..db import Executor, Row

# The message with what decides who may act on it: the conversation's two participants, or
# the acting user's role in the message's group (NULL: not a member).
_ACCESS = (
    "SELECT m.seq, m.id, m.conversation_id, m.group_id, m.sender_id, m.content, m.created_at,"
    " m.edited_at, m.deleted_at, c.user_low_id, c.user_high_id, gm.role AS my_role"
    " FROM messages m"
    " LEFT JOIN conversations c ON c.id = m.conversation_id"
    " LEFT JOIN group_members gm ON gm.group_id = m.group_id AND gm.user_id = %s"
    " WHERE m.id = %s")


async def message_for_actor(db: Executor, message_id: str, user_id: str) -> Row | None:
    return await db.fetch_one(_ACCESS, (user_id, message_id))


async def message_for_actor_locked(db: Executor, message_id: str, user_id: str) -> Row | None:
    """As ``message_for_actor``, the message row locked for the rest of the transaction:
    changes to one message are applied one after the other."""
    return await db.fetch_one(_ACCESS + " FOR UPDATE", (user_id, message_id))


async def insert_edit(db: Executor, *, message_seq: int, content: str, written_at: dt.datetime,
                      replaced_at: dt.datetime) -> int:
    """Keeps the version an edit replaces."""
    return await db.execute(
        "INSERT INTO message_edits (message_seq, content, written_at, replaced_at)"
        " VALUES (%s, %s, %s, %s)", (message_seq, content, written_at, replaced_at))


async def set_content(db: Executor, message_seq: int, content: str, now: dt.datetime) -> int:
    return await db.execute(
        "UPDATE messages SET content = %s, edited_at = %s, updated_at = %s WHERE seq = %s",
        (content, now, now, message_seq))


async def edit_count(db: Executor, message_seq: int) -> int:
    row = await db.fetch_one("SELECT COUNT(*) AS n FROM message_edits WHERE message_seq = %s", (message_seq,))
    return int(row["n"])


async def edits_of(db: Executor, message_seq: int) -> list[Row]:
    """Earlier versions, oldest first."""
    return await db.fetch_all(
        "SELECT content, CAST(written_at AS CHAR) AS written_at, CAST(replaced_at AS CHAR) AS replaced_at"
        " FROM message_edits WHERE message_seq = %s ORDER BY id", (message_seq,))


async def tombstone(db: Executor, message_seq: int, deleted_by: str, now: dt.datetime) -> int:
    return await db.execute(
        "UPDATE messages SET content = '', deleted_at = %s, deleted_by = %s, updated_at = %s,"
        " reactions_summary = NULL, has_attachments = 0"
        " WHERE seq = %s AND deleted_at IS NULL", (now, deleted_by, now, message_seq))


async def delete_edits_of(db: Executor, message_seq: int) -> int:
    return await db.execute("DELETE FROM message_edits WHERE message_seq = %s", (message_seq,))


async def delete_reactions_of(db: Executor, message_seq: int) -> int:
    return await db.execute("DELETE FROM message_reactions WHERE message_seq = %s", (message_seq,))
