"""Events another process stored while Redis did not carry them, delivered to this process's
sockets from the event log (docs/scaling.md#when-redis-is-down-or-restarts).

While Redis is unreachable each process delivers only to its own sockets, and the live sockets
of the others never learn of those events (they are not disconnected, so they do not
recover). Each writer's head travels in Redis (realtime/redis_adapter.py, "Heads"): a process
announces its own after every subscription, and one that subscribes again reads the others'
from the marks hash. Whenever a head is past what this process delivered of that writer, the
events in between are read from the event log, writer by writer in offset order, and
delivered here in order before the next Redis message is read; a later copy of any of them
from Redis is dropped (`SocketDelivery.remote_event`), so each arrives once.

The fill is bounded. Events are read `BATCH` at a time, and a gap of more than
``redis.gap_fill_max_events`` events (one writer's, after a long outage under load) is not
delivered at all: the process takes the gap as delivered and closes every connection it holds
(`CloseReason.CATCH_UP`), as a lost network would. The official clients reconnect by
themselves and recover the events each of them missed (connection-state recovery replays up to
this process's progress, which now includes the gap), or, without recovery or past its cap,
get a new session and catch up over `GET /api/chat/events?after=`. A gap that cannot be read
(the database is away) is handled the same way: the clients are told to catch up rather than
left connected without the events.

A new process's announcement also says where its writer started (the log's head then): every
process names the writer from then on, and what a position that does not name it owes is read
from there, not by time (event_log.events_owed).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from dataclasses import replace
from typing import Any

from nexus_chat.context import AppContext
from nexus_chat.event_log import writer_events, writer_events_exceed
from nexus_chat.offsets import WriterMark
from nexus_chat.realtime.reasons import CloseReason
from nexus_chat.services import attachments

from .socket_delivery import ORIGIN, SocketDelivery

log = logging.getLogger("nexus_chat.realtime.gap_fill")

BATCH = 500     # events read per query


class GapFill:
    def __init__(self, ctx: AppContext, delivery: SocketDelivery, writer: int, head_at_start: int) -> None:
        self.ctx = ctx
        self.delivery = delivery
        self.progress = delivery.progress
        self.writer = writer
        self.head_at_start = head_at_start
        self.max_events = ctx.settings.redis_gap_fill_max_events

    def attach(self, adapter) -> None:
        adapter.head_of = self.head_of
        adapter.mark_of = self.mark_of
        adapter.on_head = self.head
        adapter.on_resubscribed = self.resubscribed

    def mark_of(self, meta: dict[str, Any]) -> tuple[str, str] | None:
        """The Redis adapter's mark of a broadcast: its writer, and the writer's mark value."""
        origin = meta.get(ORIGIN)
        if origin is None:
            return None
        return str(origin[0]), WriterMark(origin[0], origin[1], int(time.time()), self.head_at_start).value()

    def head_of(self) -> tuple[str, str, str]:
        """This process's writer: the last offset it delivered (published or dropped) and
        when, as a mark, and where it started."""
        last = self.progress.last(self.writer)
        mark = WriterMark(self.writer, self.head_at_start if last is None else last, int(time.time()),
                          self.head_at_start)
        return str(self.writer), mark.value(), str(self.head_at_start)

    def head(self, source: str, value: str, start: str) -> Awaitable[None] | None:
        """Another process's head (announced on its subscription)."""
        mark = WriterMark.parse(source, value)
        if mark is None or not (start.isascii() and start.isdigit()):
            return None
        return self._learn(replace(mark, start=int(start)))

    async def resubscribed(self, marks: dict[str, str]) -> None:
        """Subscribed again after losing Redis: every writer's events up to its mark."""
        for source, value in marks.items():
            mark = WriterMark.parse(source, value)
            pending = None if mark is None else self._learn(mark)
            if pending is not None:
                await pending

    def _learn(self, mark: WriterMark) -> Awaitable[None] | None:
        """A writer's mark: the events of it after what this process delivered, up to the
        mark, if any, to be delivered from the event log."""
        if mark.writer == self.writer:
            return None
        last = self.progress.last(mark.writer)
        if last is None:
            if mark.start is None:
                return None     # an unknown writer of an older version: the marks settle it
            self.progress.started(mark.writer, mark.start)
            if mark.start < self.head_at_start:
                # Began before this process: what it stored before this process had sockets is
                # none of theirs, and this process cannot tell where it stopped delivering.
                self.progress.advance(mark.writer, mark.offset)
                return None
            last = mark.start
        return self._fill(mark.writer, last, mark.offset) if mark.offset > last else None

    async def _fill(self, writer: int, after: int, up_to: int) -> None:
        delivered = 0
        try:
            if await writer_events_exceed(self.ctx.db, writer, after=after, up_to=up_to, count=self.max_events):
                self._catch_up(writer, after, up_to, f"more than {self.max_events} events")
                return
            expires = attachments.url_expiry(self.ctx)
            while after < up_to:
                events = await writer_events(self.ctx.db, writer, after=after, up_to=up_to, limit=BATCH)
                for event in events:
                    self.delivery.emit_here(replace(event, payload=attachments.fresh_urls(self.ctx, event.payload,
                                                                                          expires)))
                delivered += len(events)
                if len(events) < BATCH:
                    break
                after = int(events[-1].offset)
        except Exception:
            log.warning("gap fill: events of writer %s after %s not read", writer, after, exc_info=True)
            self._catch_up(writer, after, up_to, "the event log could not be read")
            return
        self.progress.advance(writer, up_to)
        log.info("gap fill: writer=%s delivered=%d from the event log (up to %s)", writer, delivered, up_to)

    def _catch_up(self, writer: int, after: int, up_to: int, why: str) -> None:
        """The rest of the gap is not delivered here: it counts as delivered (a recovery
        replays it), and every client of this process reconnects to catch up."""
        self.progress.advance(writer, up_to)
        sockets = self.delivery.server.connection_count()
        self.delivery.server.close_connections(CloseReason.CATCH_UP)
        log.warning("gap fill: writer=%s after %s up to %s: %s; closed %d connections, their clients"
                    " reconnect and catch up (recovery or REST)", writer, after, up_to, why, sockets)
