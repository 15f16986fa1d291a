"""What a reply shows of the message it answers; a page's worth in one query."""
from __future__ import annotations

from ..db import Executor, Row
from ..shapes import public_columns

SNIPPET_CHARS = 100


async def snippets(db: Executor, message_ids: list[str]) -> list[Row]:
    """id, its conversation_id or group_id, deleted, the first characters of the current
    content and the sender (UserPublic columns prefixed ``sender_``)."""
    if not message_ids:
        return []
    marks = ", ".join(["%s"] * len(message_ids))
    return await db.fetch_all(
        "SELECT r.id, r.conversation_id, r.group_id, r.deleted_at IS NOT NULL AS deleted,"
        f" LEFT(r.content, {SNIPPET_CHARS}) AS snippet, "
        # dates as text, as in a history page's own rows (parsing them is the costly part)
        + public_columns("u", "sender_").replace("u.last_seen_at AS", "CAST(u.last_seen_at AS CHAR) AS")
        + f" FROM messages r LEFT JOIN users u ON u.id = r.sender_id WHERE r.id IN ({marks})",
        tuple(message_ids))
