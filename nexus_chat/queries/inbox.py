"""The inbox: a user's 1-on-1 conversations and groups in one list, most recent activity
first, with unread counts from the read pointers."""
from __future__ import annotations

from ..db import Executor, Row
from ..shapes import public_columns

# Activity is the newest message's seq (0 for a chat without messages); ties by chat id.
_CHATS = (
    "SELECT chats.*, rp.last_read_seq, rm.id AS last_read_message_id, " + public_columns("pu", "partner_") + " FROM ("
    " SELECT 'direct' AS kind, c.id AS chat_id,"
    "  COALESCE((SELECT MAX(m.seq) FROM messages m WHERE m.conversation_id = c.id), 0) AS last_seq,"
    "  IF(c.user_low_id = %(me)s, c.user_high_id, c.user_low_id) AS partner_id,"
    "  NULL AS group_name, NULL AS group_icon_url"
    " FROM conversations c WHERE c.user_low_id = %(me)s"
    " UNION ALL"
    " SELECT 'direct', c.id, COALESCE((SELECT MAX(m.seq) FROM messages m WHERE m.conversation_id = c.id), 0),"
    "  c.user_low_id, NULL, NULL"
    " FROM conversations c WHERE c.user_high_id = %(me)s AND c.user_low_id <> %(me)s"
    " UNION ALL"
    " SELECT 'group', g.id, COALESCE((SELECT MAX(m.seq) FROM messages m WHERE m.group_id = g.id), 0),"
    "  NULL, g.name, g.icon_url"
    " FROM group_members gm JOIN chat_groups g ON g.id = gm.group_id WHERE gm.user_id = %(me)s"
    ") chats"
    " LEFT JOIN users pu ON pu.id = chats.partner_id"
    " LEFT JOIN read_pointers rp ON rp.chat_id = chats.chat_id AND rp.user_id = %(me)s"
    " LEFT JOIN messages rm ON rm.seq = rp.last_read_seq")


async def chats_page(db: Executor, user_id: str, *, limit: int, after: tuple[int, str] | None) -> list[Row]:
    """One page of the user's chats, most recent activity first; ``after``: the (last_seq,
    chat_id) of the previous page's last entry."""
    args: dict = {"me": user_id, "limit": limit}
    where = ""
    if after is not None:
        where = " WHERE (chats.last_seq < %(seq)s OR (chats.last_seq = %(seq)s AND chats.chat_id < %(chat)s))"
        args.update(seq=after[0], chat=after[1])
    return await db.fetch_all(_CHATS + where + " ORDER BY chats.last_seq DESC, chats.chat_id DESC LIMIT %(limit)s",
                              args)


async def unread_counts(db: Executor, user_id: str, chats: list[Row]) -> dict[str, int]:
    """For each chat (kind, chat_id, last_read_seq) of a page: messages after the user's
    pointer that someone else sent and nobody deleted. One statement; each part reads only the
    range of the (chat, seq) index past the pointer (hinted: MariaDB otherwise reads the chat's
    whole index from the newest entry down, 400 ms for a conversation of 200,000 messages)."""
    if not chats:
        return {}
    parts, args = [], []
    for chat in chats:
        column, index = (("group_id", "ix_messages_group") if chat["kind"] == "group"
                         else ("conversation_id", "ix_messages_conversation"))
        parts.append(f"SELECT %s AS chat_id, COUNT(*) AS n FROM messages FORCE INDEX ({index})"
                     f" WHERE {column} = %s AND seq > %s"
                     " AND (sender_id <> %s OR sender_id IS NULL) AND deleted_at IS NULL")
        args += [chat["chat_id"], chat["chat_id"], chat["last_read_seq"] or 0, user_id]
    rows = await db.fetch_all(" UNION ALL ".join(parts), tuple(args))
    return {row["chat_id"]: int(row["n"]) for row in rows}
