"""What a reply shows of the message it answers; a page's worth in one query."""
from __future__ import annotations

from ..db import Executor, Row
from ..jsonutil import loads

SNIPPET_CHARS = 100
_FIELDS = ("conversation_id", "group_id", "deleted", "snippet", "sender_id", "sender_username",
           "sender_full_name", "sender_avatar_url", "sender_bio", "sender_status", "sender_last_seen_at")


async def snippets(db: Executor, message_ids: list[str]) -> list[Row]:
    """id, its conversation_id or group_id, deleted, the first characters of the current
    content and the sender (UserPublic columns prefixed ``sender_``).

    Each row comes back as its id and one JSON array: a page of replies costs the pure-Python
    driver two columns a row to parse instead of twelve."""
    if not message_ids:
        return []
    marks = ", ".join(["%s"] * len(message_ids))
    rows = await db.fetch_all(
        "SELECT r.id, JSON_ARRAY(r.conversation_id, r.group_id, r.deleted_at IS NOT NULL,"
        f" LEFT(r.content, {SNIPPET_CHARS}), u.id, u.username, u.full_name, u.avatar_url, u.bio, u.status,"
        " CAST(u.last_seen_at AS CHAR)) AS fields"
        f" FROM messages r LEFT JOIN users u ON u.id = r.sender_id WHERE r.id IN ({marks})",
        tuple(message_ids))
    return [{"id": row["id"], **dict(zip(_FIELDS, loads(row["fields"])))} for row in rows]
