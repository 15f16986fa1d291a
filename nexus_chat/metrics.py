"""Prometheus metrics, served at /metrics (handlers/metrics.py).

Each application has its own ``CollectorRegistry`` (tests run many apps in one process); the
samplers (an event-loop lag timer, an outbox backlog PeriodicCallback) are started and stopped
with the runtime. ``MESSAGES_SENT`` is process-wide so the chat code can import and count it; every
app's registry exposes it.
"""
from __future__ import annotations

import logging
from typing import Any

from prometheus_client import (GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry,
                               Counter, Gauge, Histogram)
from tornado.ioloop import IOLoop, PeriodicCallback

from .db import db_unreachable
from .queries.outbox import pending_mail_count

log = logging.getLogger("nexus_chat.metrics")

# Chat messages stored and delivered; count with MESSAGES_SENT.labels(kind="direct"|"group").inc().
MESSAGES_SENT = Counter("nexus_messages_sent", "Chat messages sent", ["kind"], registry=None)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LAG_INTERVAL_S = 0.5
OUTBOX_INTERVAL_S = 15.0


class AppMetrics:
    """The metrics of one application and the samplers that feed them."""

    def __init__(self, ctx: Any, socket_server: Any = None) -> None:
        self.ctx = ctx
        self.socket_server = socket_server   # anything with connection_count()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("nexus_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("nexus_http_request_duration_seconds", "HTTP request duration",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.loop_lag = Histogram("nexus_event_loop_lag_seconds",
                                  "Delay of a timer callback past its due time", buckets=LAG_BUCKETS,
                                  registry=r)
        self.loop_lag_last = Gauge("nexus_event_loop_lag_last_seconds",
                                   "The latest event-loop lag measurement", registry=r)
        Gauge("nexus_socketio_connections", "Open Socket.IO (Engine.IO) connections",
              registry=r).set_function(self._socket_connections)
        pool = Gauge("nexus_db_pool_connections", "Database pool connections", ["state"], registry=r)
        pool.labels(state="in_use").set_function(lambda: self._pool(0))
        pool.labels(state="open").set_function(lambda: self._pool(1))
        pool.labels(state="max").set_function(lambda: self._pool(2))
        self.outbox_pending = Gauge("nexus_mail_outbox_pending",
                                    f"Mails waiting in the outbox (sampled every {OUTBOX_INTERVAL_S:g} s)",
                                    registry=r)
        Gauge("nexus_background_leader", "1 while this process runs the sweeper and the mail outbox "
              "(always with one process; with several, the holder of the Redis lease)",
              registry=r).set_function(self._leader)
        r.register(MESSAGES_SENT)
        Gauge("nexus_message_insert_batches", "Multi-row INSERTs of new messages so far (group commit: "
              "messages sent / this = rows per INSERT)", registry=r).set_function(lambda: ctx.messages.batches)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):   # CPU, memory, fds, GC
            r.register(collector)
        self._outbox: PeriodicCallback | None = None
        self._lag_timer: object | None = None
        self._lag_due = 0.0

    # ---- read at scrape time ----------------------------------------------------------------
    def _socket_connections(self) -> float:
        if self.socket_server is None:
            return 0
        try:
            return float(self.socket_server.connection_count())
        except Exception:  # a scrape must not fail because of one source
            log.warning("socket connection count failed", exc_info=True)
            return 0

    def _leader(self) -> float:
        lease = getattr(self.ctx, "lease", None)
        return 1.0 if lease is None or lease.held else 0.0

    def _pool(self, index: int) -> float:
        try:
            return float(self.ctx.db.usage()[index])
        except Exception:
            return 0

    # ---- requests -----------------------------------------------------------------------------
    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.latency.labels(method=method, route=route).observe(seconds)

    # ---- samplers -----------------------------------------------------------------------------
    def start(self) -> "AppMetrics":
        self._outbox = PeriodicCallback(self._refresh_outbox, OUTBOX_INTERVAL_S * 1000)
        self._outbox.start()
        loop = IOLoop.current()
        loop.add_callback(self._refresh_outbox)
        self._schedule_lag(loop)
        return self

    def stop(self) -> None:
        if self._outbox is not None:
            self._outbox.stop()
            self._outbox = None
        if self._lag_timer is not None:
            IOLoop.current().remove_timeout(self._lag_timer)
            self._lag_timer = None

    def _schedule_lag(self, loop: IOLoop) -> None:
        # A one-shot timer re-armed from now (not a fixed-rate PeriodicCallback, which skips
        # missed ticks): how late it fires is exactly how long the loop was busy.
        self._lag_due = loop.time() + LAG_INTERVAL_S
        self._lag_timer = loop.call_at(self._lag_due, self._measure_lag)

    def _measure_lag(self) -> None:
        loop = IOLoop.current()
        lag = max(0.0, loop.time() - self._lag_due)
        self.loop_lag.observe(lag)
        self.loop_lag_last.set(lag)
        self._schedule_lag(loop)

    async def _refresh_outbox(self) -> None:
        try:
            self.outbox_pending.set(await pending_mail_count(self.ctx.db))
        except Exception as exc:
            if not db_unreachable(exc):   # an outage is logged once by the database tracker
                log.warning("outbox backlog sample failed", exc_info=True)
