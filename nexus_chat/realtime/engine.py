"""Engine.IO v4 server: sessions, heartbeat, upgrade and write queues.

The transports live in ``polling.py`` and ``websocket.py``; this module holds
the state they share and knows a transport only by ``transport.FrameTransport``
(``endpoint.py`` routes requests to the transports). Everything runs on the IOLoop thread, so no locks.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from tornado.httputil import HTTPHeaders, HTTPServerRequest
from tornado.ioloop import IOLoop

from . import defaults
from . import engineio_packets as eio
from .reasons import MISBEHAVIOUR, CloseReason
from .refusals import FORBIDDEN, TRANSPORT_UNKNOWN, UNSUPPORTED_VERSION, Refusal, protocol_error_body
from .ticks import TickWheel, tick_for
from .transport import FrameTransport

log = logging.getLogger("nexus_chat.realtime")

PING_FRAME = eio.text_frame(eio.PING)
PING_FRAMES = (PING_FRAME,)
CLOSE_FRAME = eio.text_frame(eio.CLOSE)
NOOP_FRAME = eio.text_frame(eio.NOOP)


@dataclass(frozen=True, slots=True)
class Handshake:
    headers: HTTPHeaders
    query: dict[str, str]
    remote_ip: str | None

    @classmethod
    def from_request(cls, request: HTTPServerRequest) -> Handshake:
        query = {k: v[0].decode("utf-8", "replace") for k, v in request.query_arguments.items() if v}
        return cls(request.headers, query, request.remote_ip)


class DuplicatePoll(Exception):
    """A long-polling GET that came while another was pending for the same session."""


class Session:
    """One Engine.IO connection, whichever transport currently carries it.

    Its heartbeat deadlines are filed in the engine's ``TickWheel`` (one timer for all
    sessions); ``wake`` is called when one has passed."""

    __slots__ = ("engine", "sid", "handshake", "transport", "ws", "probe", "closed", "app", "_queue",
                 "_queued_bytes", "_poll", "_poll_order", "_final", "loop", "_upgrade_timer",
                 "_ping_due", "_ping_left_at", "_heard_at", "_ping_queued", "_awaiting_pong",
                 "_opened_at", "_wake_token")

    def __init__(self, engine: EngineServer, handshake: Handshake, transport: str) -> None:
        self.engine = engine
        self.sid = secrets.token_urlsafe(15)
        self.handshake = handshake
        self.transport = transport  # "polling" or "websocket"
        self.ws: FrameTransport | None = None
        self.probe: FrameTransport | None = None  # websocket being upgraded to
        self.closed = False
        self.app: Any = None  # owned by the layer above (the Socket.IO connection)
        self._queue: list[eio.Frame] = []   # frames waiting for a poll (or for an upgrade to finish)
        self._queued_bytes = 0
        self._poll: asyncio.Future[bytes] | None = None
        self._poll_order = 0
        self._final: list[eio.Frame] | None = None  # what a lingering closed session still owes
        self.loop = IOLoop.current()
        self._upgrade_timer: object | None = None
        # The heartbeat runs on deadlines, not on when a timer happens to fire: the pong for
        # the next ping is due at ``_ping_due + ping_timeout`` even if the loop was busy.
        self._ping_due: float | None = None
        self._ping_left_at: float | None = None
        self._heard_at: float | None = None  # when the last packet came from the client
        self._ping_queued = False
        self._awaiting_pong = False
        self._opened_at = self.loop.time()
        self._wake_token = 0   # the current heartbeat deadline in the wheel; older ones are stale

    # ------------------------------------------------------------ handshake
    def open_packet(self) -> eio.Frame:
        upgrades = ["websocket"] if self.transport == "polling" else []
        body = {
            "sid": self.sid,
            "upgrades": upgrades,
            "pingInterval": self.engine.ping_interval_ms,
            "pingTimeout": self.engine.ping_timeout_ms,
            "maxPayload": self.engine.max_payload,
        }
        return eio.text_frame(eio.OPEN, orjson.dumps(body).decode())

    def start(self) -> None:
        # From the handshake request, not from the end of its answer: a client that waited
        # pingInterval + pingTimeout after receiving the handshake must find the session gone.
        self._schedule_ping(self._opened_at)

    # ------------------------------------------------------------ outgoing
    def send(self, frames: Sequence[eio.Frame]) -> bool:
        """Queue frames without blocking; False if the session is gone."""
        if self.closed:
            return False
        if self.transport == "websocket" and self.ws is not None:
            for frame in frames:
                self.ws.send_frame(frame)
            if self.ws.unsent_bytes() > self.engine.max_buffer_bytes:
                self.close(CloseReason.BUFFER_OVERFLOW, graceful=False)
                return False
            return True
        self._queue.extend(frames)
        self._queued_bytes += sum(len(f.data) for f in frames)
        if self._queued_bytes > self.engine.max_buffer_bytes:
            self.close(CloseReason.BUFFER_OVERFLOW, graceful=False)
            return False
        self._answer_poll()
        return True

    def _drain(self) -> list[eio.Frame]:
        if self._ping_queued:
            self._ping_queued = False
            self._ping_left_at = self.loop.time()
        frames, self._queue = self._queue, []
        self._queued_bytes = 0
        return frames

    def _answer_poll(self, frames: list[eio.Frame] | None = None) -> None:
        if self._poll is None or self._poll.done():
            return
        if frames is None:
            if self.probe is not None:
                frames = [NOOP_FRAME]  # upgrading: keep the queue for the websocket
            elif self._queue:
                frames = self._drain()
            else:
                return
        poll, self._poll = self._poll, None
        poll.set_result(eio.encode_payload(frames))

    def poll(self, order: int = 0) -> asyncio.Future[bytes]:
        """A long-polling GET: a future for the body.

        Two concurrent GETs are a protocol error: the session closes, the original GET gets
        the CLOSE and the duplicate's future fails with DuplicatePoll. Which one is original
        goes by ``order`` (when the HTTP connection was accepted, see ConnectionOrderHTTPServer),
        not by arrival: a client's two requests on two new connections may be read in either order.
        """
        poll = asyncio.get_running_loop().create_future()
        current = self._poll
        if current is not None and not current.done():
            if order < self._poll_order:
                current.set_exception(DuplicatePoll())
                self._poll, self._poll_order = poll, order
            else:
                poll.set_exception(DuplicatePoll())
            return poll
        self._poll, self._poll_order = poll, order
        if self._final is not None:
            self._answer_poll(self._final)
            self.engine.forget(self)
        else:
            self._answer_poll()
        return poll

    def cancel_poll(self, poll: asyncio.Future[bytes]) -> None:
        if self._poll is poll:
            self._poll = None
        if not poll.done():
            poll.cancel()

    # ------------------------------------------------------------ incoming
    def receive(self, packet: eio.Packet) -> None:
        """Handle one packet from the active transport."""
        if self.closed:
            return
        self._heard_at = self.loop.time()
        if packet.type == eio.MESSAGE:
            self.engine.dispatch_message(self, packet.data)
        elif packet.type == eio.PONG:
            self._on_pong()
        elif packet.type == eio.CLOSE:
            self.close(CloseReason.TRANSPORT_CLOSE, graceful=False, client_closed=True)
        elif packet.type == eio.NOOP:
            pass
        else:  # a client ping (heartbeats go server -> client in v4), open, upgrade
            self.close(CloseReason.PARSE_ERROR, graceful=False)

    def check_heartbeat(self) -> None:
        """Close now if the pong deadline passed, whatever the timers say (a busy loop
        runs them late; a request arriving after the deadline must not find the session)."""
        deadline = self._pong_deadline()
        if deadline is not None and self.loop.time() >= deadline:
            self.close(CloseReason.PING_TIMEOUT, graceful=False)

    # ------------------------------------------------------------ heartbeat
    def _pong_deadline(self) -> float | None:
        """pingTimeout after the ping left, or after it was due if it has not left yet
        (a ping waiting in the queue of a client that does not poll counts from its due time)."""
        if self._ping_due is None:
            return None
        left = self._ping_left_at if self._ping_left_at is not None else self._ping_due
        deadline = max(left, self._ping_due) + self.engine.ping_timeout_ms / 1000
        if self._heard_at is not None:
            # As the reference server does: any packet shows the client is alive, and gives it
            # pingInterval + pingTimeout more (a busy client's pong may come late).
            heard = self._heard_at + (self.engine.ping_interval_ms + self.engine.ping_timeout_ms) / 1000
            deadline = max(deadline, heard)
        return deadline

    def _schedule_ping(self, since: float) -> None:
        self._ping_due = since + self.engine.ping_interval_ms / 1000
        self._ping_left_at = None
        self._file(self._ping_due)

    def _file(self, when: float) -> None:
        """The next heartbeat deadline (a ping due, or a pong's deadline); replaces the last."""
        self._wake_token += 1
        self.engine.ticks.add(when, self, self._wake_token)

    def wake(self, token: int) -> None:
        """From the engine's wheel: the deadline filed with ``token`` has passed."""
        if token != self._wake_token or self.closed:
            return   # superseded (a pong came, the ping was rescheduled) or closed
        if self._awaiting_pong:
            self._pong_check()
        else:
            self._ping()

    def _ping(self) -> None:
        self._awaiting_pong = True
        if self.transport == "websocket":
            self._ping_left_at = self.loop.time()
        else:
            self._ping_queued = True  # leaves with the next poll answer (see _drain)
        self._file(self._pong_deadline())
        self.send(PING_FRAMES)

    def _pong_check(self) -> None:
        deadline = self._pong_deadline()
        if deadline is None:
            return
        if self.loop.time() >= deadline:
            self.close(CloseReason.PING_TIMEOUT, graceful=False)
        else:  # the ping left late or the client spoke since: its deadline moved
            self._file(deadline)

    def _on_pong(self) -> None:
        if not self._awaiting_pong:
            return  # unsolicited pong: harmless
        self._awaiting_pong = False
        self._schedule_ping(self.loop.time())   # supersedes the pong's deadline

    # ------------------------------------------------------------ upgrade
    def can_upgrade(self) -> bool:
        return not self.closed and self.transport == "polling" and self.probe is None

    def begin_probe(self, ws: FrameTransport) -> None:
        self.probe = ws
        timeout = self.engine.upgrade_timeout_ms / 1000
        self._upgrade_timer = self.loop.call_later(timeout, self._upgrade_timed_out, ws)

    def probe_answered(self) -> None:
        """After ``3probe``: end the pending GET so the client can pause polling."""
        self._answer_poll()

    def finish_upgrade(self, ws: FrameTransport) -> None:
        self._cancel(self._upgrade_timer)
        self._upgrade_timer = None
        self.probe = None
        self.transport = "websocket"
        self.ws = ws
        self._answer_poll([NOOP_FRAME])
        self.send(self._drain())
        log.debug("session %s upgraded to websocket", self.sid)

    def abort_probe(self, ws: FrameTransport) -> None:
        if self.probe is ws:
            self.probe = None
            self._cancel(self._upgrade_timer)
            self._upgrade_timer = None
            self._answer_poll()

    def _upgrade_timed_out(self, ws: FrameTransport) -> None:
        if self.probe is ws:
            self.abort_probe(ws)
            ws.close()

    # ------------------------------------------------------------ close
    def close(self, reason: CloseReason, *, graceful: bool = True, client_closed: bool = False,
              detail: str | None = None) -> None:
        """Close the session once: answer a pending GET, close websockets, notify. ``detail``
        (what was wrong, from whom) goes into the one log line of the close."""
        if self.closed:
            return
        self.closed = True
        self._cancel(self._upgrade_timer)   # the heartbeat's deadline in the wheel goes stale
        self._ping_due = None
        if client_closed:
            final = [NOOP_FRAME]
        elif graceful:
            final = self._drain() + [CLOSE_FRAME]
        else:
            final = [CLOSE_FRAME]
        self._drain()
        linger = False
        if self._poll is not None and not self._poll.done():
            self._answer_poll(final)
        elif (graceful or client_closed) and self.transport == "polling":
            # The next GET gets it: after a server close the queued packets and CLOSE; after
            # the client's CLOSE a NOOP for the GET it sent alongside, which may arrive second.
            self._final = final
            linger = True
        for ws in (self.ws, self.probe):
            if ws is not None:
                ws.close()
        self.probe = None
        self.engine.remove(self, linger)
        level = logging.WARNING if reason in MISBEHAVIOUR else logging.INFO
        if detail:
            log.log(level, "engine.io session %s closed: %s (%s)", self.sid, reason, detail[:200])
        else:
            log.log(level, "engine.io session %s closed: %s", self.sid, reason)
        self.engine.dispatch_close(self, reason)

    def _cancel(self, timer: object | None) -> None:
        if timer is not None:
            self.loop.remove_timeout(timer)


class EngineServer:
    """Owns the sessions and the configuration; the layer above plugs in with
    ``on_open(session)``, ``on_message(session, str | bytes)`` and
    ``on_close(session, reason)``."""

    def __init__(
        self,
        *,
        ping_interval_ms: int = defaults.PING_INTERVAL_MS,
        ping_timeout_ms: int = defaults.PING_TIMEOUT_MS,
        max_payload: int = defaults.MAX_PAYLOAD,
        allowed_origins: list[str] | None = None,
        max_buffer_bytes: int = defaults.MAX_BUFFER_BYTES,
        upgrade_timeout_ms: int = 10000,
        on_open: Callable[[Session], None] | None = None,
        on_message: Callable[[Session, str | bytes], None] | None = None,
        on_close: Callable[[Session, str], None] | None = None,
        admit: Callable[[Handshake], Refusal | None] | None = None,
        error_body: Callable[[Refusal, HTTPServerRequest], bytes] | None = None,
    ) -> None:
        # The protocol suites expect {"code", "message"}; the product wraps it in its envelope.
        self.error_body = error_body or (lambda refusal, request: protocol_error_body(refusal))
        # Asked before a handshake opens a session (rate limits, caps); None lets it in.
        self.admit = admit or (lambda handshake: None)
        self.ping_interval_ms = int(ping_interval_ms)
        self.ping_timeout_ms = int(ping_timeout_ms)
        self.max_payload = int(max_payload)
        self.allowed_origins = None if allowed_origins is None else {o.rstrip("/") for o in allowed_origins}
        self.max_buffer_bytes = int(max_buffer_bytes)
        self.upgrade_timeout_ms = int(upgrade_timeout_ms)
        self.on_open = on_open
        self.on_message = on_message
        self.on_close = on_close
        self.sessions: dict[str, Session] = {}
        # One timer for every session's heartbeat (and the layer above's connect timeouts).
        self.ticks = TickWheel(tick_for(self.ping_interval_ms, self.ping_timeout_ms))
        self._lingering: dict[str, Session] = {}

    # ------------------------------------------------------------ requests
    def origin_allowed(self, origin: str | None) -> bool:
        if origin is None or self.allowed_origins is None:
            return True
        return origin.rstrip("/") in self.allowed_origins

    def check_request(self, request: HTTPServerRequest, transport: str) -> Refusal | None:
        """Why a request must be refused, else None."""
        args = request.query_arguments
        if args.get("EIO", [b""])[0] != b"4":
            return Refusal.protocol(UNSUPPORTED_VERSION)
        if args.get("transport", [b""])[0] != transport.encode():
            return Refusal.protocol(TRANSPORT_UNKNOWN)
        if not self.origin_allowed(request.headers.get("Origin")):
            return Refusal.protocol(FORBIDDEN)
        return None

    def lookup(self, sid: str) -> Session | None:
        session = self.sessions.get(sid) or self._lingering.get(sid)
        if session is not None and not session.closed:
            session.check_heartbeat()
        return self.sessions.get(sid) or self._lingering.get(sid)

    def open_session(self, handshake: Handshake, transport: str) -> Session:
        session = Session(self, handshake, transport)
        self.sessions[session.sid] = session
        return session

    def started(self, session: Session) -> None:
        """Called by a transport once the open packet is on its way."""
        session.start()
        log.debug("engine.io session %s opened (%s)", session.sid, session.transport)
        self._call(self.on_open, session)

    # ------------------------------------------------------------ bookkeeping
    def remove(self, session: Session, linger: bool) -> None:
        self.sessions.pop(session.sid, None)
        if linger:
            self._lingering[session.sid] = session
            IOLoop.current().call_later(self.ping_timeout_ms / 1000, self.forget, session)

    def forget(self, session: Session) -> None:
        self._lingering.pop(session.sid, None)

    def connection_count(self) -> int:
        return len(self.sessions)

    def close_sessions(self, reason: CloseReason) -> None:
        """Closes every open session; the engine goes on serving (clients reconnect)."""
        for session in list(self.sessions.values()):
            session.close(reason)

    def close_all(self, reason: CloseReason = CloseReason.SERVER_SHUTTING_DOWN) -> None:
        self.close_sessions(reason)
        self._lingering.clear()
        self.ticks.close()   # every deadline left belonged to a session closed just now

    # ------------------------------------------------------------ callbacks
    def dispatch_message(self, session: Session, data: str | bytes) -> None:
        self._call(self.on_message, session, data)

    def dispatch_close(self, session: Session, reason: str) -> None:
        self._call(self.on_close, session, reason)

    def _call(self, callback: Callable[..., None] | None, session: Session, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(session, *args)
        except Exception:
            log.exception("engine.io callback failed; closing session %s", session.sid)
            session.close(CloseReason.SERVER_ERROR, graceful=False)
