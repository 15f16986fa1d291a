"""The REST catch-up (GET /api/chat/events): the events the socket would have replayed,
for clients without connection-state recovery (python-socketio, Swift, Java, a page reload).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ApiError
from ..event_log import events_after, events_owed, position_swept, swept_past
from ..jsonutil import iso
from ..offsets import Position
from . import attachments, chat

if TYPE_CHECKING:
    from ..context import AppContext

TOO_OLD = "Events this old are no longer kept: reload the conversations, then follow from nextAfter"


async def events_since(ctx: AppContext, user_id: str, after: int | Position | None,
                       limit: int) -> dict[str, Any]:
    """``{events, hasMore, nextAfter}``: the user's events after ``after``, oldest first, as
    the socket carries them (to the user and the groups they are a member of now). Without
    ``after``: no events, and ``nextAfter`` is where to start following from now. ``after``
    is a position (nexus_chat/offsets.py: a socket's offset or a ``nextAfter``), exact with
    several processes, each event's offset and ``nextAfter`` then positions too; or an offset
    of digits (the previous version's, still followed as then)."""
    if after is None:
        return {"events": [], "hasMore": False, "nextAfter": _head(ctx).encode()}
    group_ids = await chat.group_ids(ctx, user_id)
    if isinstance(after, Position):
        return await _events_from(ctx, user_id, group_ids, after, limit)
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


async def _events_from(ctx: AppContext, user_id: str, group_ids: list[str], position: Position,
                       limit: int) -> dict[str, Any]:
    found = await events_owed(ctx.db, user_id, group_ids, floor=position, base=None, ceiling=None,
                              limit=limit + 1)
    if await position_swept(ctx.db, position):     # after the read, as above
        raise ApiError(410, TOO_OLD)
    expires = attachments.url_expiry(ctx)
    events = []
    for e in found[:limit]:
        if e.writer is not None:
            position = position.advanced(e.writer, e.offset)
        events.append({"offset": position.encode(), "event": e.event,
                       "data": attachments.fresh_urls(ctx, orjson.loads(e.payload), expires),
                       "createdAt": iso(e.created_at)})
    return {"events": events, "hasMore": len(found) > limit, "nextAfter": position.encode()}


def _head(ctx: AppContext) -> Position:
    """Where a reader of the log starts now: what this process has delivered of each writer
    (a writer's later events all have larger offsets, committed or not yet), as the sockets
    here are stamped. Nothing to read: it is this process's own progress."""
    return ctx.progress.position()
