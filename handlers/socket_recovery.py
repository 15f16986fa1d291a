"""Connection-state recovery on `/chat` (docs/realtime.md#connection-state-recovery), as the
official Socket.IO clients (≥ 4.6) expect it on the wire.

With ``realtime.recovery`` on, the CONNECT answer carries a private session id (``pid``) and
every stored event an offset as the last argument: the *position* of a client that has that
event, one offset per event-log writer (nexus_chat/offsets.py), stamped by the process that
delivers it. When a connection drops for any reason but a voluntary disconnect, its session
is kept for ``realtime.recovery_window_s``. A client that reconnects with ``{pid, offset}``
in its CONNECT auth, within the window and with at most ``realtime.recovery_max_events``
missed, gets the same socket id, the rooms its *current* memberships give, every missed event
in order, exactly once, and the same pid back (which the client reports as
``socket.recovered === true``). Missed events are read from the event log, so recovery
survives a restart of the server.

Exactly once, with any number of processes: the replay is, writer by writer, what comes after
the client's position and up to what this process had delivered when the socket joined its
rooms (the mark); every later event of each writer reaches the socket live. A client whose
position is ahead of this process for some writer (an event still on its way here through
Redis) waits for it first (`CATCH_UP_S`). With several processes (``shared``:
cluster/recovery_store.py) the sessions of connected sockets are also held in Redis, so a
client whose process died recovers on another one.
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
from nexus_chat.event_log import events_owed, keep_session, position_swept, restarted, take_session
from nexus_chat.jsonutil import utcnow
from nexus_chat.offsets import Position, Progress
from nexus_chat.realtime.reasons import CloseReason
from nexus_chat.realtime.server import Socket
from nexus_chat.services import attachments

log = logging.getLogger("nexus_chat.realtime.recovery")

# Reasons after which the client does not come back on its own: nothing to keep.
VOLUNTARY = frozenset({CloseReason.CLIENT_NAMESPACE_DISCONNECT, CloseReason.SERVER_NAMESPACE_DISCONNECT,
                       CloseReason.RECOVERED_ELSEWHERE})


def _hash(pid: str) -> str:
    return hashlib.sha256(pid.encode()).hexdigest()


# How long a recovering client waits for the events it already has from another process to
# reach this one (they cross Redis in milliseconds; this covers a subscriber behind a burst).
# Past it they are taken as never coming (their process died before publishing them): no
# recovery, the client gets a new session and catches up over REST.
CATCH_UP_S = 2.0


@dataclass(frozen=True)
class Claim:
    """A kept session the reconnecting client proved it owns (by its pid)."""
    pid: str
    sid: str
    base: Position       # where the session started: nothing before it is replayed
    floor: Position      # what the client has (its offset, else the base): nor anything in it


class Recovery:
    def __init__(self, ctx: AppContext, progress: Progress, shared: Any = None) -> None:
        self.ctx = ctx
        self.progress = progress     # what this process delivered (SocketDelivery's)
        self.shared = shared     # SharedRecoverySessions with realtime.adapter = redis
        self.window = dt.timedelta(seconds=ctx.settings.realtime_recovery_window_s)
        self.max_events = ctx.settings.realtime_recovery_max_events

    async def claim(self, user_id: str, auth: Any) -> Claim | None:
        """The session named by ``auth.pid`` if it is unexpired and the same user's; taken
        (a pid recovers once). The replay starts after ``auth.offset``, or where the session
        started when the client had received no event (the official client then sends none)
        or sends no position (anything else): never before where the session started. A
        session kept by the previous version (one number as its start) is not recovered."""
        pid = auth.get("pid") if isinstance(auth, dict) else None
        if not isinstance(pid, str) or not 8 <= len(pid) <= 64:
            return None
        row = await take_session(self.ctx.db, _hash(pid), user_id, utcnow())
        if row is None and self.shared is not None:
            row = await self._take_shared(_hash(pid), user_id)
        if row is None:
            return None
        base = Position.parse(row["base_position"])
        if base is None:
            log.info("not recovered sid=%s user_id=%s: kept by the previous version", row["sid"], user_id)
            return None
        client = Position.parse(auth.get("offset"))
        return Claim(pid, row["sid"], base, base if client is None else client)

    async def _take_shared(self, pid_hash: str, user_id: str) -> dict | None:
        """A session still held by a process (perhaps dead)."""
        try:
            return await self.shared.take(pid_hash, user_id)
        except Exception:
            log.warning("recovery: Redis unreachable; session not recovered", exc_info=True)
            return None

    async def fits(self, claim: Claim, user_id: str, group_ids: list[str]) -> bool:
        """Whether this process has delivered every event the client has (else it waits up
        to `CATCH_UP_S`), and at most ``max_events`` were missed so far (else the client is
        better served by REST). A first look, before the socket takes the old id: `finish`
        decides on what was missed up to the mark, which may be more."""
        if not self.progress.covers(claim.floor):
            log.info("recovery sid=%s waits for events the client has from other processes", claim.sid)
        if not await self.progress.reached(claim.floor, CATCH_UP_S):
            log.info("not recovered sid=%s user_id=%s: the client's events never reached this process",
                     claim.sid, user_id)
            return False
        events = await events_owed(self.ctx.db, user_id, group_ids, floor=claim.floor, base=claim.base,
                                   ceiling=self.progress.snapshot(), limit=self.max_events + 1,
                                   socket_id=claim.sid, **self._unnamed(claim.floor))
        return len(events) <= self.max_events

    def _unnamed(self, floor: Position) -> dict[str, Any]:
        """What the writers ``floor`` does not name may owe it: nothing, or the events of
        each after where it started (known from its announcement), else those by time."""
        unnamed = self.progress.unnamed_may_owe(floor)
        return {"unnamed": unnamed, "starts": self.progress.unnamed_starts(floor) if unnamed else None}

    def restore(self, socket: Socket, claim: Claim) -> None:
        """Before joining rooms: the socket takes its old id."""
        socket.restore(claim.sid)

    def mark(self, socket: Socket) -> Position:
        """Right after the socket joined all its rooms (no await in between): every event of
        each writer up to the returned position was delivered before; every later one
        reaches the socket live."""
        return self.progress.snapshot()

    async def finish(self, socket: Socket, user_id: str, group_ids: list[str], claim: Claim | None,
                     up_to: Position) -> None:
        """Replays what a recovered socket missed (before anything it got live since joining)
        and gives the socket its pid. More than ``max_events`` missed up to the mark (some
        arrived after `fits` looked), or missed events the log no longer keeps: no replay at
        all, the socket takes a new id and pid and the client sees ``recovered === false``;
        it catches up over REST."""
        if claim is not None:
            events = await events_owed(self.ctx.db, user_id, group_ids, floor=claim.floor, base=claim.base,
                                       ceiling=up_to, limit=self.max_events + 1, socket_id=claim.sid,
                                       **self._unnamed(claim.floor))
            # Read first: the sweep deletes oldest first, so if nothing after the floor is gone
            # now, nothing was before the read either.
            swept = await position_swept(self.ctx.db, claim.floor)
            if len(events) <= self.max_events and not swept:
                expires = attachments.url_expiry(self.ctx)   # the stored signed URLs may have expired
                position, replay = claim.floor, []
                for e in events:   # each carries the position of a client that has it
                    if e.writer is not None:
                        position = position.advanced(e.writer, e.offset)
                    replay.append((e.event, [attachments.fresh_urls(self.ctx, orjson.loads(e.payload), expires),
                                             position.encode()]))
                socket.replay(replay)
                socket.pid = claim.pid
                # This session's events start after the client's position, not at the mark: a
                # client that drops again before reading the replay gets it again next time.
                # Never before the old start either (a forged position fetches nothing older).
                socket.data["base"] = await restarted(self.ctx.db, claim.base, claim.floor)
                await self._hold(socket, user_id, socket.data["base"])
                log.info("recovered sid=%s user_id=%s replayed=%d", claim.sid, user_id, len(events))
                return
            socket.renew()
            log.info("not recovered sid=%s user_id=%s: %s", claim.sid, user_id,
                     "missed events were swept" if swept else f"more than {self.max_events} events missed")
        base = self.progress.recent(up_to)
        socket.data["base"] = base
        socket.pid = secrets.token_urlsafe(18)
        await self._hold(socket, user_id, base)

    async def _hold(self, socket: Socket, user_id: str, base: Position) -> None:
        if self.shared is None:
            return
        try:
            await self.shared.hold(_hash(socket.pid), socket.sid, user_id, base.encode())
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
                base=socket.data.get("base") or self.progress.recent(self.progress.snapshot()),
                expires_at=utcnow() + self.window)
        except Exception:
            log.warning("could not keep the session of sid=%s for recovery", socket.sid, exc_info=True)
