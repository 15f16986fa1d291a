"""Read pointers: how far each member has read a conversation or group (one row each), and
the receipts of a message computed from them."""
from __future__ import annotations

import datetime as dt

from ..db import Executor, Row
from ..shapes import public_columns


async def advance(db: Executor, *, chat_id: str, user_id: str, conversation_id: str | None,
                  group_id: str | None, seq: int, now: dt.datetime) -> bool:
    """Moves the pointer forward to ``seq`` (never back): one statement, one row. True when
    it moved."""
    changed = await db.execute(
        "INSERT INTO read_pointers (chat_id, user_id, conversation_id, group_id, last_read_seq, read_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " ON DUPLICATE KEY UPDATE"
        "  read_at = IF(VALUES(last_read_seq) > last_read_seq, VALUES(read_at), read_at),"
        "  last_read_seq = GREATEST(last_read_seq, VALUES(last_read_seq))",
        (chat_id, user_id, conversation_id, group_id, seq, now))
    return changed > 0


async def pointer(db: Executor, chat_id: str, user_id: str) -> Row | None:
    """The pointer with the id of the message it points at: last_read_seq, message_id, read_at."""
    return await db.fetch_one(
        "SELECT rp.last_read_seq, m.id AS message_id, CAST(rp.read_at AS CHAR) AS read_at"
        " FROM read_pointers rp LEFT JOIN messages m ON m.seq = rp.last_read_seq"
        " WHERE rp.chat_id = %s AND rp.user_id = %s", (chat_id, user_id))


async def newest_conversation_message_not_from(db: Executor, conversation_id: str, user_id: str) -> Row | None:
    """seq, id of the newest message someone else sent in the conversation."""
    return await db.fetch_one(
        "SELECT seq, id FROM messages WHERE conversation_id = %s AND (sender_id <> %s OR sender_id IS NULL)"
        " ORDER BY seq DESC LIMIT 1", (conversation_id, user_id))


async def newest_group_message_not_from(db: Executor, group_id: str, user_id: str) -> Row | None:
    return await db.fetch_one(
        "SELECT seq, id FROM messages WHERE group_id = %s AND (sender_id <> %s OR sender_id IS NULL)"
        " ORDER BY seq DESC LIMIT 1", (group_id, user_id))


async def sends_read_receipts(db: Executor, user_id: str) -> bool:
    row = await db.fetch_one("SELECT send_read_receipts FROM users WHERE id = %s", (user_id,))
    return bool(row and row["send_read_receipts"])


_RECEIPT_COLUMNS = ("SELECT " + public_columns("u", "") + ", rp.last_read_seq, rp.read_at")


async def group_receipts(db: Executor, group_id: str, sender_id: str | None) -> list[Row]:
    """Every current member but the sender who shares read receipts, with their pointer."""
    return await db.fetch_all(
        _RECEIPT_COLUMNS + " FROM group_members gm JOIN users u ON u.id = gm.user_id"
        " LEFT JOIN read_pointers rp ON rp.chat_id = gm.group_id AND rp.user_id = gm.user_id"
        " WHERE gm.group_id = %s AND gm.user_id <> %s AND u.send_read_receipts = 1",
        (group_id, sender_id or ""))


async def conversation_receipts(db: Executor, conversation_id: str, participant_ids: tuple[str, str],
                                sender_id: str | None) -> list[Row]:
    return await db.fetch_all(
        _RECEIPT_COLUMNS + " FROM users u"
        " LEFT JOIN read_pointers rp ON rp.chat_id = %s AND rp.user_id = u.id"
        " WHERE u.id IN (%s, %s) AND u.id <> %s AND u.send_read_receipts = 1",
        (conversation_id, *participant_ids, sender_id or ""))
