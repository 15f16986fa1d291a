"""One inbox: GET /api/chat/conversations lists 1-on-1 conversations and groups together,
most recent activity first, paged with an opaque cursor. (GET /api/chat/recent-messages
keeps its older shape: services/chat.py.)"""
from __future__ import annotations

import re
from typing import Any

from ..context import AppContext
from ..errors import validation_failed
from ..queries import chat as chat_q
from ..queries import inbox as inbox_queries
from ..shapes import user_public
from .message_details import detailed

_CURSOR = re.compile(r"^(\d{1,20})\.([0-9a-f-]{36})$")


def _cursor(row: dict) -> str:
    return f"{row['last_seq']}.{row['chat_id']}"


def _parse_cursor(cursor: str) -> tuple[int, str]:
    match = _CURSOR.match(cursor)
    if match is None:
        raise validation_failed(["cursor: Not a cursor of this list."])
    return int(match.group(1)), match.group(2)


async def conversations(ctx: AppContext, user_id: str, *, limit: int = 20,
                        cursor: str | None = None) -> dict[str, Any]:
    """{items: [{kind, id, partner, group, lastMessage, unreadCount, lastReadMessageId}],
    nextCursor}: at most four queries a page, whatever its size."""
    after = _parse_cursor(cursor) if cursor else None
    rows = await inbox_queries.chats_page(ctx.db, user_id, limit=limit + 1, after=after)
    more = len(rows) > limit
    rows = rows[:limit]
    unread = await inbox_queries.unread_counts(
        ctx.db, user_id, [row for row in rows if row["last_seq"] > (row["last_read_seq"] or 0)])
    seqs = [row["last_seq"] for row in rows if row["last_seq"]]
    by_seq = {}
    if seqs:
        message_rows = await chat_q.messages_by_seq(ctx.db, seqs)
        by_seq = {row["seq"]: message for row, message in
                  zip(message_rows, await detailed(ctx, message_rows, user_id))}
    items = []
    for row in rows:
        group = None
        if row["kind"] == "group":
            group = {"id": row["chat_id"], "name": row["group_name"], "iconUrl": row["group_icon_url"] or None}
        items.append({
            "kind": row["kind"],
            "id": row["chat_id"],
            "partner": user_public(row, "partner_") if row["kind"] == "direct" else None,
            "group": group,
            "lastMessage": by_seq.get(row["last_seq"]),
            "unreadCount": unread.get(row["chat_id"], 0),
            "lastReadMessageId": row["last_read_message_id"],
        })
    return {"items": items, "nextCursor": _cursor(rows[-1]) if more and rows else None}
