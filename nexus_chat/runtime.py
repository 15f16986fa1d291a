"""Wiring of a running server: database, context, application, background tasks.

``Runtime.start`` is used by ``nexus-chat serve`` and by the tests, so both run the same
assembly; only where the database comes from differs.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field

import tornado.httpserver

from .app import Application, make_app
from .cluster.bus import ClusterBus
from .cluster.presence_ledger import PresenceLedger
from .cluster.rate_limits import SharedRateLimiter
from .cluster.recovery_store import SharedRecoverySessions
from .cluster.sync import StateSync
from .context import AppContext
from .db import Database
from .event_log import EventLog
from .jsonutil import utcnow
from .handlers.realtime import SocketLayer, room_adapter, socket_layer
from .handlers.socket_gap_fill import GapFill
from .lease import AlwaysHeld, RedisLease, lease_key
from .mail import OutboxSender
from .web import HEADER_READ_LIMIT, MAX_REQUEST_BODY
from .metrics import AppMetrics
from .offsets import RECENT_S, epoch
from .queries import users
from .realtime.connection_order import ConnectionOrderHTTPServer
from .revocation import RevocationSync
from .services.chat_cache import ChatCache
from .services.presence import Presence
from .services.shared_presence import SharedPresence
from .sweeper import Sweeper

log = logging.getLogger("nexus_chat.runtime")


@dataclass
class DatabaseTarget:
    host: str
    port: int
    user: str
    password: str
    name: str


@dataclass
class Runtime:
    settings: object
    db: Database
    ctx: AppContext
    app: Application
    outbox: OutboxSender
    background: list = field(default_factory=list)   # objects with .stop() (sync or async)
    http_server: tornado.httpserver.HTTPServer | None = None
    presence: Presence | None = None
    sockets: SocketLayer | None = None
    event_log: EventLog | None = None

    @classmethod
    async def start(cls, settings, target: DatabaseTarget, *, mail_backend=None) -> "Runtime":
        db = await Database.connect(host=target.host, port=target.port, user=target.user,
                                    password=target.password, db=target.name,
                                    maxsize=settings.database_pool_size)
        ctx = AppContext.create(settings, db, chat_cache=ChatCache())
        adapter = room_adapter(settings)
        cluster = await _cluster(settings, ctx, adapter) if hasattr(adapter, "start") else None
        if cluster is None:
            # Nobody is connected yet, whatever the last run left behind.
            await users.set_all_offline(db)
        # Several processes (realtime.adapter = redis): one at a time runs the sweeper and the outbox.
        ctx.lease = (RedisLease(settings.redis_url, lease_key(settings.redis_key), settings.redis_lease_ttl_s)
                     if settings.realtime_adapter == "redis" else AlwaysHeld())
        outbox = OutboxSender(db, settings, backend=mail_backend, lease=ctx.lease)
        ctx.mail_wakeup = outbox.wake
        runtime = cls(settings=settings, db=db, ctx=ctx, app=None, outbox=outbox)
        # Published events reach the domain's cache first, then this process's sockets.
        runtime.presence = Presence(ctx) if cluster is None else cluster.presence
        # Stored events get their offset before delivery (recovery, REST catch-up).
        runtime.event_log = await EventLog(db).start()
        ctx.events.add_stage(runtime.event_log.stage)
        runtime.sockets = socket_layer(ctx, runtime.presence, runtime.event_log, adapter,
                                       None if cluster is None else cluster.recovery)
        if cluster is None:
            # One process: the earlier runs' writers are done, all their events delivered or
            # never to be (with Redis, each process learns this from the adapter's marks).
            # Those a recovering client's offset can name stored something in the recovery
            # window plus the RECENT_S a stamp names a writer for.
            since = utcnow() - dt.timedelta(seconds=RECENT_S + settings.realtime_recovery_window_s)
            for writer, offset, stored in await runtime.event_log.earlier_writers(since):
                ctx.progress.advance(writer, offset, at=epoch(stored))
            # This run's own writer is named from the start (nothing of it up to the log's head),
            # so a session that starts before its first event does not leave it unnamed: an
            # unnamed writer is owed by time, and recovering then reads every writer's events
            # of the last minutes (after a busy spell, a thousand recoveries took minutes).
            ctx.progress.advance(runtime.event_log.writer, runtime.event_log.head_at_start)
            ctx.progress.done_below(runtime.event_log.writer)
        if cluster is not None:   # the Redis adapter: shared rooms, reported by /api/health
            # The same with Redis, and every process announces its writer (where it started)
            # when it subscribes, so the others name it too; after an outage each process
            # delivers what the others stored meanwhile (handlers/socket_gap_fill.py).
            ctx.progress.started(runtime.event_log.writer, runtime.event_log.head_at_start)
            GapFill(ctx, runtime.sockets.delivery, runtime.event_log.writer,
                    runtime.event_log.head_at_start).attach(adapter)
            # A writer's mark matters while a client's position may name it: a stamp names it
            # up to RECENT_S after its last event, and a position is recovered within the window.
            adapter.marks_keep_s = RECENT_S + settings.realtime_recovery_window_s + 60
            await adapter.start()
            ctx.cluster = adapter
            runtime.background.append(_Closing(adapter))
            runtime.background.append(_Closing(cluster))   # stopped first (reversed)
            ctx.events.add_stage(cluster.sync.stage)   # other processes' caches, before the answer
            cluster.sync.listeners.append(runtime.sockets.delivery.from_peer)
        ctx.events.subscribe(ctx.chat_cache.on_record)
        ctx.events.subscribe(runtime.sockets.delivery)
        ctx.revoked_sessions.listeners.append(runtime.sockets.delivery.disconnect_sessions)
        # The Socket.IO routes (/socket.io/) go first.
        runtime.app = make_app(ctx, extra_routes=runtime.sockets.routes())
        await ctx.lease.start()
        runtime.background.append(ctx.lease)   # stopped (released) after the outbox and sweeper
        outbox.start()
        sweeper = Sweeper(ctx, settings.stories_sweep_s, ctx.lease)
        sweeper.start()
        runtime.background.append(sweeper)
        revocations = RevocationSync(db, ctx.revoked_sessions, settings.auth_revocation_poll_s)
        await revocations.load()   # sessions revoked by an earlier run or another process
        revocations.start()
        runtime.background.append(revocations)
        if cluster is not None:   # notices may have been missed: read the revocations again now
            cluster.bus.on_missed.append(revocations.poll)
        runtime.app.metrics = AppMetrics(ctx, runtime.sockets.server).start()   # read by /metrics and the access log
        runtime.background.append(runtime.app.metrics)
        return runtime

    def listen(self, port: int, address: str = "") -> tornado.httpserver.HTTPServer:
        # API handlers count bodies themselves (web.BaseHandler) and answer a slow body 408;
        # these are the ceilings of everything else. Bodies arrive in 64 KiB chunks.
        # Numbers connections as accepted: of two concurrent Engine.IO long-polling GETs, the one
        # sent first keeps the poll whichever is read first (realtime/engine.py).
        self.http_server = ConnectionOrderHTTPServer(
            self.app, max_body_size=MAX_REQUEST_BODY, idle_connection_timeout=75,
            max_buffer_size=MAX_REQUEST_BODY, max_header_size=HEADER_READ_LIMIT,
            body_timeout=self.settings.server_body_timeout_s + 1)
        self.http_server.listen(port, address)
        return self.http_server

    async def stop(self, grace_s: float = 0) -> None:
        """Stop accepting, let in-flight requests finish (up to grace_s), then close everything."""
        if self.http_server is not None:
            self.http_server.stop()
        deadline = asyncio.get_running_loop().time() + grace_s
        while self.ctx.inflight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if self.sockets is not None:
            await self.sockets.close()
        await self.ctx.messages.stop()
        if self.event_log is not None:
            await self.event_log.stop()
        if self.presence is not None:
            await self.presence.close()
        await self.outbox.stop()   # before the lease is given back: no other sender overlaps
        for item in reversed(self.background):
            result = item.stop()
            if asyncio.iscoroutine(result):
                await result
        if self.http_server is not None:
            await self.http_server.close_all_connections()
        self.ctx.hasher.close()
        self.ctx.media.close()
        await self.db.close()


@dataclass
class _Cluster:
    """What several processes share through Redis besides the rooms (nexus_chat/cluster/)."""

    bus: ClusterBus
    presence: SharedPresence
    sync: StateSync
    rate_limiter: SharedRateLimiter
    recovery: SharedRecoverySessions | None

    async def close(self) -> None:
        await self.rate_limiter.close()
        await self.bus.close()


async def _cluster(settings, ctx: AppContext, adapter) -> _Cluster:
    """realtime.adapter = redis: presence, caches, revocations, rate limits and recoverable
    sessions shared through Redis (docs/scaling.md). Starts even if Redis is down."""
    bus = ClusterBus(settings.redis_url, settings.redis_key, adapter.uid, settings.redis_process_ttl_s,
                     ack_timeout_s=settings.redis_ack_timeout_ms / 1000)
    await bus.start()
    presence = SharedPresence(ctx, PresenceLedger(bus))
    try:
        await presence.start()
    except Exception as exc:
        log.warning("cluster: presence not settled at start (%s)", exc)
    recovery = (SharedRecoverySessions(bus, settings.realtime_recovery_window_s)
                if settings.realtime_recovery else None)
    sync = StateSync(bus, ctx.chat_cache, ctx.revoked_sessions, ctx.revoked_users)
    await bus.replay_kept()   # deletions and revocations made before this process started
    ctx.rate_limiter = SharedRateLimiter(bus, settings.server_rate_limits)
    bus.on_tick.append(presence.tick)
    if recovery is not None:
        bus.on_tick.append(recovery.tick)
    bus.on_rejoin.append(presence.rejoin)
    return _Cluster(bus, presence, sync, ctx.rate_limiter, recovery)


@dataclass
class _Closing:
    """Something with an async close(), stopped with the other background tasks."""

    thing: object

    async def stop(self) -> None:
        await self.thing.close()
