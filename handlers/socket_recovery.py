"""Connection-state recovery on `/chat` (docs/realtime.md#connection-state-recovery), as the
official Socket.IO clients (≥ 4.6) expect it on the wire.

With ``realtime.recovery`` on, the CONNECT answer carries a private session id (``pid``) and
every stored event its offset as the last argument. When a connection drops for any reason
but a voluntary disconnect, its session is kept for ``realtime.recovery_window_s``. A client
that reconnects with ``{pid, offset}`` in its CONNECT auth, within the window and with at most
``realtime.recovery_max_events`` missed, gets the same socket id, the rooms its *current*
memberships give, every missed event in order, exactly once, and the same pid back (which
the client reports as ``socket.recovered === true``). Missed events are read from the event
log, so recovery survives a restart of the server.

With several processes (``shared``: cluster/recovery_store.py) the sessions of connected
sockets are also held in Redis, so a client whose process died recovers on another one; the
replay then runs up to the newest stored offset (events of other processes reach this one
through Redis, not through its own event log), and an event that also arrives live while
the socket recovers is sent once (Socket.replay).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import orjson

from nexus_chat.context import AppContext
from nexus_chat.event_log import EventLog, events_after, head, keep_session, swept_past, take_session
from nexus_chat.jsonutil import utcnow
from nexus_chat.realtime.reasons import CloseReason
from nexus_chat.realtime.server import Socket
from nexus_chat.services import attachments

log = logging.getLogger("nexus_chat.realtime.recovery")

# Reasons after which the client does not come back on its own: nothing to keep.
VOLUNTARY = frozenset({CloseReason.CLIENT_NAMESPACE_DISCONNECT, CloseReason.SERVER_NAMESPACE_DISCONNECT,
                       CloseReason.RECOVERED_ELSEWHERE})


def _hash(pid: str) -> str:
    return hashlib.sha256(pid.encode()).hexdigest()


def _offset(value: Any) -> int | None:
    if isinstance(value, str) and value.isdigit() and len(value) <= 20:
        return int(value)
    return None


@dataclass(frozen=True)
class Claim:
    """A kept session the reconnecting client proved it owns (by its pid)."""
    pid: str
    sid: str
    after: int           # replay the events after this offset


class Recovery:
    def __init__(self, ctx: AppContext, event_log: EventLog, shared: Any = None) -> None:
        self.ctx = ctx
        self.log = event_log
        self.shared = shared     # SharedRecoverySessions with realtime.adapter = redis
        self.window = dt.timedelta(seconds=ctx.settings.realtime_recovery_window_s)
        self.max_events = ctx.settings.realtime_recovery_max_events

    async def claim(self, user_id: str, auth: Any) -> Claim | None:
        """The session named by ``auth.pid`` if it is unexpired and the same user's; taken
        (a pid recovers once). The replay starts after ``auth.offset``, or where the session
        started when the client had received no event (the official client then sends none).
        An offset from before the session started is not one the server sent it (the
        official client's offsets only grow): the replay starts where the session did."""
        pid = auth.get("pid") if isinstance(auth, dict) else None
        if not isinstance(pid, str) or not 8 <= len(pid) <= 64:
            return None
        row = await take_session(self.ctx.db, _hash(pid), user_id, utcnow())
        if row is None and self.shared is not None:
            row = await self._take_shared(_hash(pid), user_id)
        if row is None:
            return None
        base, after = int(row["base_offset"]), _offset(auth.get("offset"))
        return Claim(pid, row["sid"], base if after is None else max(base, after))

    async def _take_shared(self, pid_hash: str, user_id: str) -> dict | None:
        """A session still held by a process (perhaps dead)."""
        try:
            return await self.shared.take(pid_hash, user_id)
        except Exception:
            log.warning("recovery: Redis unreachable; session not recovered", exc_info=True)
            return None

    async def fits(self, claim: Claim, user_id: str, group_ids: list[str]) -> bool:
        """At most ``max_events`` missed so far (else the client is better served by REST).
        A first look, before the socket takes the old id: `finish` decides on what was
        missed up to the mark, which may be more (events that arrive meanwhile)."""
        events = await events_after(self.ctx.db, user_id, group_ids, after=claim.after, up_to=None,
                                    limit=self.max_events + 1, socket_id=claim.sid)
        return len(events) <= self.max_events

    def restore(self, socket: Socket, claim: Claim) -> None:
        """Before joining rooms: the socket takes its old id."""
        socket.restore(claim.sid)

    def mark(self, socket: Socket) -> int:
        """Right after the socket joined all its rooms (no await in between): every event up
        to the returned offset was delivered before; every later one reaches the socket live."""
        return self.log.delivered

    async def finish(self, socket: Socket, user_id: str, group_ids: list[str], claim: Claim | None,
                     up_to: int) -> None:
        """Replays what a recovered socket missed (before anything it got live since joining)
        and gives the socket its pid. More than ``max_events`` missed up to the mark (some
        arrived after `fits` looked), or missed events the log no longer keeps: no replay at
        all, the socket takes a new id and pid and the client sees ``recovered === false``;
        it catches up over REST."""
        if self.shared is not None:
            # Events of other processes move no local mark: everything stored so far is
            # replayed; what also comes live meanwhile is dropped by Socket.replay.
            up_to = max(up_to, await head(self.ctx.db))
        if claim is not None:
            events = await events_after(self.ctx.db, user_id, group_ids, after=claim.after, up_to=up_to,
                                        limit=self.max_events + 1, socket_id=claim.sid)
            # Read first: the sweep deletes oldest first, so if nothing after ``after`` is gone
            # now, nothing was before the read either.
            swept = await swept_past(self.ctx.db, claim.after)
            if len(events) <= self.max_events and not swept:
                expires = attachments.url_expiry(self.ctx)   # the stored signed URLs may have expired
                socket.replay([(e.event, [attachments.fresh_urls(self.ctx, orjson.loads(e.payload), expires),
                                          str(e.offset)]) for e in events])
                socket.pid = claim.pid
                # This session's events start after the client's offset, not at the mark: a
                # client that drops again before reading the replay gets it again next time.
                socket.data["base_offset"] = min(claim.after, up_to)
                await self._hold(socket, user_id, socket.data["base_offset"])
                log.info("recovered sid=%s user_id=%s replayed=%d", claim.sid, user_id, len(events))
                return
            socket.renew()
            log.info("not recovered sid=%s user_id=%s: %s", claim.sid, user_id,
                     "missed events were swept" if swept else f"more than {self.max_events} events missed")
        socket.data["base_offset"] = up_to
        socket.pid = secrets.token_urlsafe(18)
        await self._hold(socket, user_id, up_to)

    async def _hold(self, socket: Socket, user_id: str, base_offset: int) -> None:
        if self.shared is None:
            return
        try:
            await self.shared.hold(_hash(socket.pid), socket.sid, user_id, base_offset)
        except Exception as exc:
            log.warning("recovery: session of sid=%s not held in Redis (%s)", socket.sid, exc)

    async def keep(self, socket: Socket, reason: str) -> None:
        """On disconnect: keep the session for the window, unless the client left on purpose."""
        if self.shared is not None and socket.pid is not None:
            try:
                await self.shared.drop(_hash(socket.pid))
            except Exception as exc:
                log.warning("recovery: session of sid=%s not dropped from Redis (%s)", socket.sid, exc)
        if socket.pid is None or reason in VOLUNTARY or "user_id" not in socket.data:
            return
        try:
            await keep_session(
                self.ctx.db, pid_hash=_hash(socket.pid), sid=socket.sid, user_id=socket.data["user_id"],
                base_offset=socket.data.get("base_offset", self.log.delivered),
                expires_at=utcnow() + self.window)
        except Exception:
            log.warning("could not keep the session of sid=%s for recovery", socket.sid, exc_info=True)
