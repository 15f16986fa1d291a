"""The REST catch-up (GET /api/chat/events): the events the socket would have replayed,
for clients without connection-state recovery (python-socketio, Swift, Java, a page reload).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ApiError
from ..event_log import events_after, swept_past
from ..jsonutil import iso
from ..queries import event_log as event_log_queries
from . import attachments, chat

if TYPE_CHECKING:
    from ..context import AppContext

TOO_OLD = "Events this old are no longer kept: reload the conversations, then follow from nextAfter"


async def events_since(ctx: AppContext, user_id: str, after: int | None, limit: int) -> dict[str, Any]:
    """``{events, hasMore, nextAfter}``: the user's events after ``after``, oldest first, as
    the socket carries them (to the user and the groups they are a member of now). Without
    ``after``: no events, and ``nextAfter`` is where to start following from now."""
    if after is None:
        return {"events": [], "hasMore": False, "nextAfter": str(await event_log_queries.head(ctx.db))}
    group_ids = await chat.group_ids(ctx, user_id)
    found = await events_after(ctx.db, user_id, group_ids, after=after, up_to=None, limit=limit + 1)
    if await swept_past(ctx.db, after):     # after the read: the sweep deletes oldest first
        raise ApiError(410, TOO_OLD)
    page = found[:limit]
    expires = attachments.url_expiry(ctx)
    events = [{"offset": str(e.offset), "event": e.event,
               "data": attachments.fresh_urls(ctx, orjson.loads(e.payload), expires),
               "createdAt": iso(e.created_at)} for e in page]
    last = page[-1].offset if page else after
    return {"events": events, "hasMore": len(found) > limit, "nextAfter": str(last)}
