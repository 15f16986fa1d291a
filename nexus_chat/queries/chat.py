"""Chat SQL: conversations, messages, unread counts, read marking, the audience of presence.

Messages are ordered by ``seq`` (AUTO_INCREMENT, commit order); newest first is ``seq DESC``.
A conversation's latest activity is its highest ``seq``, read through the
(conversation_id, seq) index, so storing a message is one row of one INSERT (concurrent sends
share a multi-row INSERT: nexus_chat/message_writer.py).
"""
from __future__ import annotations

import datetime as dt

from ..db import Executor, Row
from ..jsonutil import loads
from ..searchtext import scope_token
from ..shapes import PUBLIC_USER_FIELDS
from .replies import SNIPPET_CHARS

PUBLIC_USER = ", ".join(PUBLIC_USER_FIELDS)


def _user_fields(table: str, prefix: str) -> tuple[tuple[str, str], ...]:
    """(name, expression) of a joined user's UserPublic columns, the date as text."""
    return tuple((f"{prefix}{c}", f"CAST({table}.{c} AS CHAR)" if c == "last_seen_at" else f"{table}.{c}")
                 for c in PUBLIC_USER_FIELDS)


# Dates come back as text ("2026-01-01 09:30:00.123", which jsonutil.iso() turns into the API
# form): parsing four datetimes a row in the pure-Python driver was the largest single cost of
# a history page, and message rows are only ever shaped for output.
MESSAGE_FIELDS: tuple[tuple[str, str], ...] = (
    ("seq", "m.seq"), ("id", "m.id"), ("conversation_id", "m.conversation_id"),
    ("group_id", "m.group_id"), ("content", "m.content"), ("client_message_id", "m.client_message_id"),
    ("is_read", "m.is_read"), ("read_at", "CAST(m.read_at AS CHAR)"),
    ("created_at", "CAST(m.created_at AS CHAR)"), ("updated_at", "CAST(m.updated_at AS CHAR)"),
    ("edited_at", "CAST(m.edited_at AS CHAR)"), ("deleted_at", "CAST(m.deleted_at AS CHAR)"),
    ("deleted_by", "m.deleted_by"), ("reply_to_id", "m.reply_to_id"),
    *_user_fields("u", "sender_"),
    # The reactions, summarised on the row in the answer's shape (sql/013_reactions_wire.sql).
    # JSON_COMPACT makes MariaDB nest the stored text as JSON, not as a string holding JSON:
    # decoded once with the row instead of a second time per message.
    ("reactions", "JSON_COMPACT(m.reactions_summary)"),
    # What a reply shows of the message it answers (rm), with that message's sender (ru):
    # read with the page instead of in a query of its own. NULL when this is no reply.
    ("reply_found", "0 + (rm.id IS NOT NULL)"), ("reply_deleted", "0 + (rm.deleted_at IS NOT NULL)"),
    ("reply_snippet", f"LEFT(rm.content, {SNIPPET_CHARS})"), *_user_fields("ru", "reply_sender_"),
    # Whether the attachments query may find anything (most pages have none). Kept on the
    # row: a dependent EXISTS here cost MariaDB 2–5 ms a page inside JSON_ARRAY.
    ("has_attachments", "m.has_attachments"),
)
MESSAGE_COLUMNS = ", ".join(f"{expr} AS {name}" for name, expr in MESSAGE_FIELDS)
# The same fields as one JSON array a row: the pure-Python driver parses one column instead
# of 23 (a page of 50 messages took half the client CPU this way), and orjson decodes it in C.
# As bytes (BINARY): the driver would otherwise decode each row into a str first, which
# orjson then encodes back to UTF-8 to parse it (a row with an emoji becomes a 4-byte-per-
# character str): two passes over every byte of the page for nothing.
MESSAGE_PACKED = "CAST(JSON_ARRAY(" + ", ".join(expr for _, expr in MESSAGE_FIELDS) + ") AS BINARY) AS packed"
_MESSAGE_NAMES = tuple(name for name, _ in MESSAGE_FIELDS)
MESSAGE_FROM = ("FROM messages m LEFT JOIN users u ON u.id = m.sender_id"
                " LEFT JOIN messages rm ON rm.id = m.reply_to_id LEFT JOIN users ru ON ru.id = rm.sender_id")


# A cursor page (`seq <` or `seq >` a message's) is a range of (conversation_id, seq) or
# (group_id, seq). Left to itself MariaDB 10.11 reads it as `ref` on the chat's id and filters
# on seq while walking from the newest row: a page from the middle of 1,000,000 messages then
# read 500,000 index entries (360 ms instead of 1.6 ms, bench `history-depth`). The hint makes
# it a range scan of the page's rows only.
BY_CONVERSATION = "FORCE INDEX (ix_messages_conversation)"
BY_GROUP = "FORCE INDEX (ix_messages_group)"


async def _messages(db: Executor, where: str, args: tuple, index_hint: str = "") -> list[Row]:
    """Message rows (MESSAGE_FIELDS) ``WHERE …``, read packed; ``index_hint`` applies to ``m``."""
    from_ = MESSAGE_FROM.replace("FROM messages m ", f"FROM messages m {index_hint} ", 1) if index_hint else MESSAGE_FROM
    rows = await db.fetch_all(f"SELECT {MESSAGE_PACKED} {from_} WHERE {where}", args)
    return [dict(zip(_MESSAGE_NAMES, loads(row["packed"]))) for row in rows]


# ---- users ---------------------------------------------------------------------------------
async def public_user(db: Executor, user_id: str) -> Row | None:
    """The columns of UserPublic, or None when the user does not exist."""
    return await db.fetch_one(f"SELECT {PUBLIC_USER} FROM users WHERE id = %s", (user_id,))


async def public_users_by_id(db: Executor, user_ids: list[str]) -> dict[str, Row]:
    """The UserPublic columns of those of ``user_ids`` that exist, by id."""
    marks = ", ".join(["%s"] * len(user_ids))
    rows = await db.fetch_all(f"SELECT {PUBLIC_USER} FROM users WHERE id IN ({marks})", tuple(user_ids))
    return {row["id"]: row for row in rows}


# ---- conversations -------------------------------------------------------------------------
async def conversation_for_pair(db: Executor, low_id: str, high_id: str) -> Row | None:
    return await db.fetch_one(
        "SELECT id FROM conversations WHERE user_low_id = %s AND user_high_id = %s", (low_id, high_id))


async def insert_conversation_if_absent(db: Executor, *, conversation_id: str, creator_id: str,
                                        recipient_id: str, low_id: str, high_id: str,
                                        now: dt.datetime) -> int:
    """Creates the pair's conversation unless one exists (whoever wrote first, even at the
    same instant: the unique ordered pair decides). Read the winner back with
    ``conversation_for_pair``."""
    return await db.execute(
        "INSERT INTO conversations (id, creator_id, recipient_id, user_low_id, user_high_id,"
        " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON DUPLICATE KEY UPDATE id = id",
        (conversation_id, creator_id, recipient_id, low_id, high_id, now, now))


async def conversation_participants(db: Executor, conversation_id: str) -> Row | None:
    return await db.fetch_one(
        "SELECT id, user_low_id, user_high_id FROM conversations WHERE id = %s", (conversation_id,))


# The user's conversations with the seq of their newest message and the number of messages
# from the other person past the user's read pointer (not ``is_read``: a reader who does not
# share receipts leaves that unset), deleted ones left out. Each subquery reads one range of
# the (conversation_id, seq) index (the count: only past the pointer, hinted as in the inbox);
# they run once per conversation in the derived table, and the sort happens outside it
# (sorting on them in place evaluated them again: 4x slower).
_LAST_SEQ = "(SELECT MAX(lm.seq) FROM messages lm WHERE lm.conversation_id = c.id)"
_UNREAD = ("(SELECT COUNT(*) FROM messages um FORCE INDEX (ix_messages_conversation)"
           " WHERE um.conversation_id = c.id AND um.seq > COALESCE(rp.last_read_seq, 0)"
           " AND um.sender_id <> %(me)s AND um.deleted_at IS NULL)")
_MY_CONVERSATIONS = (   # {part}: which ids (a str.format field, filled with SQL text only)
    f"SELECT c.id, c.creator_id, c.recipient_id, c.created_at, c.updated_at, {_LAST_SEQ} AS last_seq,"
    f" {_UNREAD} AS unread"
    " FROM conversations c LEFT JOIN read_pointers rp ON rp.chat_id = c.id AND rp.user_id = %(me)s"
    " WHERE c.user_low_id = %(me)s AND c.id {part}"
    " UNION ALL"
    f" SELECT c.id, c.creator_id, c.recipient_id, c.created_at, c.updated_at, {_LAST_SEQ}, {_UNREAD}"
    " FROM conversations c LEFT JOIN read_pointers rp ON rp.chat_id = c.id AND rp.user_id = %(me)s"
    " WHERE c.user_high_id = %(me)s AND c.user_low_id <> %(me)s AND c.id {part}")
_MY_CONVERSATIONS_PART = {above: _MY_CONVERSATIONS.format(part=">= %(split)s" if above else "< %(split)s")
                          for above in (False, True)}
_RECENT_FIELDS = (("id", "t.id"), ("created_at", "CAST(t.created_at AS CHAR)"),
                  ("updated_at", "CAST(t.updated_at AS CHAR)"), ("last_seq", "t.last_seq"),
                  ("unread", "t.unread"), *_user_fields("cu", "creator_"), *_user_fields("pu", "recipient_"))
_RECENT_NAMES = tuple(name for name, _ in _RECENT_FIELDS)
_RECENT_WIDTH = len(_RECENT_FIELDS)


async def recent_conversations(db: Executor, user_id: str, *, split: str, above: bool) -> list[Row]:
    """The user's conversations whose id sorts below ``split`` (``above``: the others), latest
    activity first (the ORDER BY below; ``recent_order`` is its key): both users, the seq of the latest
    message (None without messages), ``unread`` (see _UNREAD) and ``last_message``, the
    latest message's row (MESSAGE_FIELDS) or None. One statement, read packed: one JSON array
    a row (three statements of 1,000 rows each cost the pure-Python driver three times the
    rows, and the request three round trips one after the other). The two parts of a split
    are disjoint and together every conversation, whatever the ids."""
    rows = await db.fetch_all(
        "SELECT CAST(JSON_ARRAY(" + ", ".join(expr for _, expr in _RECENT_FIELDS) + ", "
        + ", ".join(expr for _, expr in MESSAGE_FIELDS) + ") AS BINARY) AS packed"
        f" FROM ({_MY_CONVERSATIONS_PART[above]}) t"
        " JOIN users cu ON cu.id = t.creator_id JOIN users pu ON pu.id = t.recipient_id"
        " LEFT JOIN messages m ON m.seq = t.last_seq LEFT JOIN users u ON u.id = m.sender_id"
        " LEFT JOIN messages rm ON rm.id = m.reply_to_id LEFT JOIN users ru ON ru.id = rm.sender_id"
        " ORDER BY t.last_seq IS NULL, t.last_seq DESC, t.created_at DESC",
        {"me": user_id, "split": split})
    out = []
    for row in rows:
        values = loads(row["packed"])
        conversation = dict(zip(_RECENT_NAMES, values))
        conversation["last_message"] = (dict(zip(_MESSAGE_NAMES, values[_RECENT_WIDTH:]))
                                        if values[_RECENT_WIDTH] is not None else None)
        out.append(conversation)
    return out


def recent_order(row: Row) -> tuple:
    """The ORDER BY of ``recent_conversations`` as a key, descending: conversations with
    messages first, newest message first, then the newest conversation."""
    return row["last_seq"] is not None, row["last_seq"] or 0, row["created_at"]


# ---- messages ------------------------------------------------------------------------------
MESSAGE_ROW = "(%s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s)"


async def insert_messages(db: Executor, rows: list[tuple]) -> int:
    """The one statement that stores messages, each row (id, conversation_id, group_id,
    sender_id, content, client_message_id, reply_to_id, created_at), in the order given (their
    ``seq``). One bad row fails them all: a reused (sender, clientMessageId) raises a
    duplicate-key error, a vanished conversation/group/sender a foreign-key error."""
    marks = ", ".join([MESSAGE_ROW] * len(rows))
    return await db.execute(
        "INSERT INTO messages (id, conversation_id, group_id, sender_id, content, client_message_id,"
        f" reply_to_id, is_read, search_scope, created_at, updated_at) VALUES {marks}",
        tuple(value for row in rows
              for value in (*row[:7], scope_token(row[1], row[2]), row[7], row[7])))


async def message_by_client_id(db: Executor, sender_id: str, client_message_id: str) -> Row | None:
    rows = await _messages(db, "m.sender_id = %s AND m.client_message_id = %s",
                           (sender_id, client_message_id))
    return rows[0] if rows else None


async def message_by_id(db: Executor, message_id: str) -> Row | None:
    rows = await _messages(db, "m.id = %s", (message_id,))
    return rows[0] if rows else None


async def message_position(db: Executor, message_id: str) -> Row | None:
    """Where a message sits (for `before` paging): seq, conversation_id, group_id."""
    return await db.fetch_one(
        "SELECT seq, conversation_id, group_id FROM messages WHERE id = %s", (message_id,))


async def conversation_messages(db: Executor, conversation_id: str, *, limit: int, offset: int,
                                before_seq: int | None) -> list[Row]:
    """Newest first."""
    if before_seq is None:
        return await _messages(db, "m.conversation_id = %s"
                                   " ORDER BY m.seq DESC LIMIT %s OFFSET %s", (conversation_id, limit, offset))
    return await _messages(db, "m.conversation_id = %s AND m.seq < %s"
                               " ORDER BY m.seq DESC LIMIT %s OFFSET %s", (conversation_id, before_seq, limit, offset),
                           BY_CONVERSATION)


async def group_messages(db: Executor, group_id: str, *, limit: int, offset: int,
                         before_seq: int | None) -> list[Row]:
    """Newest first."""
    if before_seq is None:
        return await _messages(db, "m.group_id = %s"
                                   " ORDER BY m.seq DESC LIMIT %s OFFSET %s", (group_id, limit, offset))
    return await _messages(db, "m.group_id = %s AND m.seq < %s"
                               " ORDER BY m.seq DESC LIMIT %s OFFSET %s", (group_id, before_seq, limit, offset),
                           BY_GROUP)


async def conversation_messages_after(db: Executor, conversation_id: str, *, after_seq: int,
                                      limit: int, offset: int) -> list[Row]:
    """Oldest first, after ``after_seq`` (a forward cursor)."""
    return await _messages(db, "m.conversation_id = %s AND m.seq > %s"
                           " ORDER BY m.seq LIMIT %s OFFSET %s", (conversation_id, after_seq, limit, offset),
                           BY_CONVERSATION)


async def group_messages_after(db: Executor, group_id: str, *, after_seq: int, limit: int,
                               offset: int) -> list[Row]:
    """Oldest first, after ``after_seq`` (a forward cursor)."""
    return await _messages(db, "m.group_id = %s AND m.seq > %s"
                           " ORDER BY m.seq LIMIT %s OFFSET %s", (group_id, after_seq, limit, offset),
                           BY_GROUP)


async def messages_by_seq(db: Executor, seqs: list[int]) -> list[Row]:
    if not seqs:
        return []
    marks = ", ".join(["%s"] * len(seqs))
    return await _messages(db, f"m.seq IN ({marks})", tuple(seqs))


# ---- read receipts -------------------------------------------------------------------------
async def mark_read_up_to(db: Executor, conversation_id: str, sender_id: str, max_seq: int,
                          now: dt.datetime) -> int:
    """Marks the sender's unread messages up to ``max_seq`` read; how many changed."""
    return await db.execute(
        "UPDATE messages SET is_read = 1, read_at = %s, updated_at = %s"
        " WHERE conversation_id = %s AND is_read = 0 AND sender_id = %s AND seq <= %s",
        (now, now, conversation_id, sender_id, max_seq))


# ---- presence ------------------------------------------------------------------------------
async def presence_audience(db: Executor, user_id: str) -> list[str]:
    """Who is told about the user's presence: those who saved the user in their contacts,
    the user's 1-on-1 partners and group co-members (not the user)."""
    rows = await db.fetch_all(
        "SELECT owner_id AS user_id FROM contacts WHERE contact_user_id = %(u)s"
        " UNION SELECT user_high_id FROM conversations WHERE user_low_id = %(u)s"
        " UNION SELECT user_low_id FROM conversations WHERE user_high_id = %(u)s"
        " UNION SELECT g2.user_id FROM group_members g1"
        "   JOIN group_members g2 ON g2.group_id = g1.group_id"
        "   WHERE g1.user_id = %(u)s AND g2.user_id <> %(u)s",
        {"u": user_id})
    return [row["user_id"] for row in rows]


async def mark_offline(db: Executor, user_ids: list[str], now: dt.datetime) -> int:
    """Shutdown: the users this process had online go offline at once."""
    if not user_ids:
        return 0
    marks = ", ".join(["%s"] * len(user_ids))
    return await db.execute(
        f"UPDATE users SET status = 'offline', last_seen_at = %s WHERE id IN ({marks})",
        (now, *user_ids))
