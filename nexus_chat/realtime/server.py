"""Socket.IO v5 server on top of the Engine.IO server.

Each Engine.IO connection gets a ``_Connection`` holding its namespace sockets
and an inbox: packets are handled one after another by a single task per
connection, so a client's events run in arrival order while different
connections run concurrently. The product plugs in ``Namespace`` objects.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from tornado.ioloop import IOLoop
from tornado.routing import Rule

from . import defaults
from . import engineio_packets as eio
from . import socketio_packets as sio
from .endpoint import engine_routes
from .admission import Probation
from .engine import EngineServer, Handshake, Session
from .refusals import Refusal
from .reasons import CloseReason
from .rooms import Adapter, InMemoryAdapter

log = logging.getLogger("nexus_chat.realtime")

__all__ = ["SocketServer", "Namespace", "ConnectRefused", "Socket"]


class ConnectRefused(Exception):
    """Raised by ``on_connect`` to refuse a CONNECT (the client gets CONNECT_ERROR).
    Raised by ``on_event``, it disconnects the socket from its namespace."""

    def __init__(self, message: str = "Connection refused", data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class Namespace:
    """Base class with no-op handlers; subclass and override what you need.

    ``admits_session``: a CONNECT here vouches for the client (it authenticated), which ends
    the session's probation: the connect timeout and the caps on sessions without one. Set
    it False on a namespace anybody may join without credentials."""

    admits_session = True

    async def on_connect(self, socket: Socket, auth: dict | None) -> None:
        return None

    async def on_event(self, socket: Socket, event: str, args: list) -> list | None:
        return None

    async def on_disconnect(self, socket: Socket, reason: str) -> None:
        return None


class Socket:
    """A client's membership of one namespace."""

    __slots__ = ("server", "sid", "pid", "eio_sid", "namespace", "data", "handshake", "connected",
                 "_conn", "_early", "_acks", "_next_ack", "_last_rooms")

    def __init__(self, server: SocketServer, conn: _Connection, namespace: str) -> None:
        self.server = server
        self.sid = secrets.token_urlsafe(15)
        self.pid: str | None = None   # connection-state recovery: sent in the CONNECT answer
        self.eio_sid = conn.session.sid
        self.namespace = namespace
        self.data: dict[str, Any] = {}
        self.handshake: Handshake = conn.session.handshake
        self.connected = False
        self._conn = conn
        self._early: list[list[eio.Frame]] | None = []  # emits made before the CONNECT reply
        self._acks: dict[int, Callable[..., Any]] | None = None   # made by the first emit with a callback
        self._next_ack = 0
        self._last_rooms: frozenset[str] = frozenset()

    # -------------------------------------------------------------- app API
    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        ack_id = None
        if callback is not None:
            ack_id = self._next_ack
            self._next_ack += 1
            if self._acks is None:
                self._acks = {}
            self._acks[ack_id] = callback
        self._send(encode_frames(sio.event(self.namespace, event, args, ack_id)))

    def join(self, room: str) -> None:
        if self._early is not None or self.connected:
            self.server.adapter.join(self.namespace, self.sid, room)

    def leave(self, room: str) -> None:
        self.server.adapter.leave(self.namespace, self.sid, room)

    @property
    def rooms(self) -> set[str]:
        if self._early is not None or self.connected:
            return self.server.adapter.rooms_of(self.namespace, self.sid)
        return set(self._last_rooms)

    def disconnect(self) -> None:
        """Server-side namespace disconnect; ``on_disconnect`` runs afterwards."""
        if not self.connected:
            return
        self._send(encode_frames(sio.Packet(sio.DISCONNECT, self.namespace)))
        self._conn.detach(self)
        self._conn.enqueue(lambda: self._conn.notify_disconnect(self, CloseReason.SERVER_NAMESPACE_DISCONNECT))

    def close_connection(self) -> None:
        self._conn.session.close(CloseReason.FORCED_SERVER_CLOSE)

    # -------------------------------------------------------------- recovery
    def restore(self, sid: str) -> None:
        """Connection-state recovery, from ``on_connect`` before joining any room: this socket
        takes the id of the client's earlier one. If that earlier socket is still here (its
        connection not yet timed out), it is dropped first, so that its late close cannot
        touch the rooms of this one."""
        old = self.server._sockets.get(self.namespace, {}).get(sid)
        if old is not None and old is not self:
            old._conn.detach(old)
            old._conn.enqueue(lambda: old._conn.notify_disconnect(old, CloseReason.RECOVERED_ELSEWHERE))
            old.close_connection()
        self.server.unregister(self)
        self.server.adapter.leave_all(self.namespace, self.sid)
        self.sid = sid
        self.server.register(self)

    def renew(self) -> None:
        """From ``on_connect``, after a `restore` and joining rooms, when the socket is not
        recovered after all: it takes a new id and keeps its rooms (and what was emitted to it
        since it joined them), a new session as far as the client can tell."""
        rooms = self.server.adapter.rooms_of(self.namespace, self.sid) - {self.sid}
        self.server.unregister(self)
        self.server.adapter.leave_all(self.namespace, self.sid)
        self.sid = secrets.token_urlsafe(15)
        self.server.register(self)
        for room in sorted(rooms):
            self.server.adapter.join(self.namespace, self.sid, room)

    def replay(self, events: list[tuple[str, list[Any]]]) -> None:
        """From ``on_connect``: ``(event, args)`` the client missed, sent right after the
        CONNECT answer and before anything emitted to this socket since it joined its rooms."""
        frames = [encode_frames(sio.event(self.namespace, event, args)) for event, args in events]
        if self._early is not None:
            self._early[:0] = frames

    # -------------------------------------------------------------- internals
    def _send(self, frames: list[eio.Frame]) -> bool:
        if self._early is not None:
            self._early.append(frames)
            return True
        if not self.connected:
            return False
        return self._conn.session.send(frames)

    def _mark_connected(self) -> None:
        early, self._early = self._early or [], None
        self.connected = True
        for frames in early:
            self._conn.session.send(frames)

    def _mark_gone(self) -> None:
        self._last_rooms = frozenset(self.server.adapter.rooms_of(self.namespace, self.sid))
        self.server.adapter.leave_all(self.namespace, self.sid)
        self.connected = False
        self._early = None
        self._acks = None


def encode_frames(packet: sio.Packet) -> list[eio.Frame]:
    """Encode a Socket.IO packet into Engine.IO frames, once."""
    return [eio.message_frame(part) for part in sio.encode(packet)]


class _Connection:
    """Socket.IO state of one Engine.IO session. Its connect timeout is a deadline in the
    engine's wheel (``wake``), not a timer of its own; its inbox and worker task exist only
    while packets are being handled."""

    __slots__ = ("server", "session", "decoder", "sockets", "connecting", "closed_reason", "client",
                 "admitted", "_inbox", "_worker", "_attachment_timer")

    def __init__(self, server: SocketServer, session: Session) -> None:
        self.server = server
        self.session = session
        self.decoder = sio.Decoder(max_pending_bytes=server.max_attachment_bytes)
        self.sockets: dict[str, Socket] = {}  # namespace -> connected socket
        self.connecting: list[str] = []       # namespaces whose CONNECT is being handled
        self.closed_reason: str | None = None
        self.client = server.client_address(session.handshake)
        self.admitted = False  # a socket connected to a namespace that admits_session
        self._inbox: deque[Callable[[], Awaitable[None]]] | None = None
        self._worker: asyncio.Task | None = None
        self._attachment_timer: object | None = None
        session.engine.ticks.add(session.loop.time() + server.connect_timeout_ms / 1000, self)

    def wake(self, token: object) -> None:
        """The connect timeout has passed (from the engine's wheel)."""
        self._connect_timeout()

    # -------------------------------------------------------------- inbox
    def enqueue(self, job: Callable[[], Awaitable[None]]) -> None:
        if self._inbox is None:
            self._inbox = deque()
        self._inbox.append(job)
        if self._worker is None:
            # Not get_running_loop(): close_all() may run while the loop is stopped.
            self._worker = self.session.loop.asyncio_loop.create_task(self._run())

    async def _run(self) -> None:
        inbox = self._inbox
        while inbox:
            job = inbox.popleft()
            try:
                await job()
            except Exception:
                log.exception("socket.io: unhandled error on connection %s", self.session.sid)
        self._worker = None
        if self._inbox is inbox and not inbox:
            self._inbox = None   # an idle connection holds no queue

    # -------------------------------------------------------------- engine callbacks
    def on_message(self, data: str | bytes) -> None:
        try:
            packet = self.decoder.feed(data)
        except eio.ProtocolError as exc:
            self.session.close(CloseReason.PARSE_ERROR, graceful=False, detail=f"{exc}, from {self.client}")
            return
        self._watch_attachments()
        if packet is not None:
            self.enqueue(lambda: self._handle(packet))

    def _watch_attachments(self) -> None:
        """A binary packet's attachments must all arrive within the attachment timeout."""
        loop = IOLoop.current()
        if self.decoder.waiting and self._attachment_timer is None:
            self._attachment_timer = loop.call_later(self.server.attachment_timeout_ms / 1000,
                                                     self._attachments_timed_out)
        elif not self.decoder.waiting and self._attachment_timer is not None:
            loop.remove_timeout(self._attachment_timer)
            self._attachment_timer = None

    def _attachments_timed_out(self) -> None:
        self._attachment_timer = None
        self.session.close(CloseReason.ATTACHMENT_TIMEOUT, graceful=False,
                           detail=f"{self.decoder.pending_bytes} bytes held, from {self.client}")

    def on_close(self, reason: str) -> None:
        if self._attachment_timer is not None:
            IOLoop.current().remove_timeout(self._attachment_timer)
            self._attachment_timer = None
        self.decoder = sio.Decoder()  # drop any attachments held
        if not self.admitted:
            self.server.probation.ended(self.client)
        self.closed_reason = reason
        gone = list(self.sockets.values())
        for socket in gone:
            self.detach(socket)
        for socket in gone:
            self.enqueue(lambda s=socket: self.notify_disconnect(s, reason))

    def _connect_timeout(self) -> None:
        admitting = [nsp for nsp in self.sockets if self.server.namespaces[nsp].admits_session]
        if not admitting and not self.connecting and self.closed_reason is None and not self.session.closed:
            self.session.close(CloseReason.CONNECT_TIMEOUT)

    # -------------------------------------------------------------- packets
    async def _handle(self, packet: sio.Packet) -> None:
        if self.closed_reason is not None:
            return
        nsp, ptype = packet.namespace, packet.type
        if ptype == sio.CONNECT:
            await self._connect(nsp, packet.data)
            return
        socket = self.sockets.get(nsp)
        if ptype == sio.DISCONNECT:
            if socket is not None:
                self.detach(socket)
                await self.notify_disconnect(socket, CloseReason.CLIENT_NAMESPACE_DISCONNECT)
        elif socket is None or ptype == sio.CONNECT_ERROR:
            self._protocol_error(f"packet type {ptype} for namespace {nsp!r} not joined")
        elif ptype in (sio.EVENT, sio.BINARY_EVENT):
            await self._event(socket, packet)
        else:
            await self._ack(socket, packet)

    def _protocol_error(self, why: str) -> None:
        log.debug("socket.io: closing %s: %s", self.session.sid, why)
        self.session.close(CloseReason.PARSE_ERROR, graceful=False)

    async def _connect(self, nsp: str, auth: dict | None) -> None:
        if nsp in self.sockets or nsp in self.connecting:
            self._protocol_error(f"second CONNECT to {nsp!r}")
            return
        namespace = self.server.namespaces.get(nsp)
        if namespace is None:
            self._connect_error(nsp, "Invalid namespace")
            return
        socket = Socket(self.server, self, nsp)
        self.server.register(socket)
        self.connecting.append(nsp)
        try:
            await namespace.on_connect(socket, auth)
        except ConnectRefused as exc:
            self._refuse(socket, exc.message, exc.data)
            return
        except Exception:
            log.exception("socket.io: on_connect failed for namespace %s", nsp)
            self._refuse(socket, "Internal server error")
            return
        finally:
            self.connecting.remove(nsp)
        if self.closed_reason is not None:  # the connection died while on_connect ran
            self.server.unregister(socket)
            socket._mark_gone()
            await self.notify_disconnect(socket, self.closed_reason)
            return
        self.sockets[nsp] = socket
        if namespace.admits_session and not self.admitted:
            self.admitted = True
            self.server.probation.ended(self.client)
        answer = {"sid": socket.sid} if socket.pid is None else {"sid": socket.sid, "pid": socket.pid}
        self.session.send(encode_frames(sio.Packet(sio.CONNECT, nsp, answer)))
        socket._mark_connected()

    def _refuse(self, socket: Socket, message: str, data: Any = None) -> None:
        self.server.unregister(socket)
        socket._mark_gone()
        self._connect_error(socket.namespace, message, data)

    def _connect_error(self, nsp: str, message: str, data: Any = None) -> None:
        payload: dict[str, Any] = {"message": message}
        if data is not None:
            payload["data"] = data
        self.session.send(encode_frames(sio.Packet(sio.CONNECT_ERROR, nsp, payload)))

    async def _event(self, socket: Socket, packet: sio.Packet) -> None:
        name, args = packet.data[0], packet.data[1:]
        namespace = self.server.namespaces[socket.namespace]
        try:
            result = await namespace.on_event(socket, name, args)
        except ConnectRefused:
            socket.disconnect()
            return
        except Exception:
            log.exception("socket.io: handler for %r failed on namespace %s", name, socket.namespace)
            return
        if packet.id is not None and socket.connected:
            if result is None:
                result = []
            elif not isinstance(result, (list, tuple)):
                result = [result]
            socket._send(encode_frames(sio.Packet(sio.ACK, socket.namespace, list(result), packet.id)))

    async def _ack(self, socket: Socket, packet: sio.Packet) -> None:
        callback = socket._acks.pop(packet.id, None) if socket._acks else None
        if callback is None:
            return
        result = callback(*packet.data)
        if inspect.isawaitable(result):
            await result

    # -------------------------------------------------------------- sockets
    def detach(self, socket: Socket) -> None:
        if self.sockets.get(socket.namespace) is socket:
            del self.sockets[socket.namespace]
        self.server.unregister(socket)
        socket._mark_gone()

    async def notify_disconnect(self, socket: Socket, reason: str) -> None:
        namespace = self.server.namespaces.get(socket.namespace)
        if namespace is None:
            return
        try:
            await namespace.on_disconnect(socket, reason)
        except Exception:
            log.exception("socket.io: on_disconnect failed on namespace %s", socket.namespace)


class SocketServer:
    def __init__(
        self,
        *,
        ping_interval_ms: int = defaults.PING_INTERVAL_MS,
        ping_timeout_ms: int = defaults.PING_TIMEOUT_MS,
        max_payload: int = defaults.MAX_PAYLOAD,
        connect_timeout_ms: int = defaults.CONNECT_TIMEOUT_MS,
        allowed_origins: list[str] | None = None,
        max_buffer_bytes: int = defaults.MAX_BUFFER_BYTES,
        adapter: Adapter | None = None,
        error_body: Callable[[Refusal, Any], bytes] | None = None,
        max_attachment_bytes: int | None = None,
        attachment_timeout_ms: int = defaults.ATTACHMENT_TIMEOUT_MS,
        max_unadmitted: int | None = None,
        max_unadmitted_per_client: int | None = None,
        client_address: Callable[[Handshake], str] | None = None,
        admit: Callable[[Handshake], Refusal | None] | None = None,
    ) -> None:
        """``max_attachment_bytes`` (default: ``max_payload``) bounds the binary attachments
        held for one incomplete packet, ``attachment_timeout_ms`` how long they may take.
        ``max_unadmitted`` / ``max_unadmitted_per_client`` cap the sessions that have not
        connected a namespace that ``admits_session`` (all of them / per ``client_address``,
        default the peer address); past a cap, handshakes are refused with 503 / 429.
        ``admit`` is asked first for every handshake (e.g. a rate limit)."""
        self.connect_timeout_ms = int(connect_timeout_ms)
        self.max_attachment_bytes = int(max_payload if max_attachment_bytes is None else max_attachment_bytes)
        self.attachment_timeout_ms = int(attachment_timeout_ms)
        self.client_address = client_address or (lambda handshake: handshake.remote_ip or "")
        # Refused handshakes may retry once the sessions ahead of them met the connect timeout.
        self.probation = Probation(max_unadmitted, max_unadmitted_per_client,
                                   -(-self.connect_timeout_ms // 1000))
        self._app_admit = admit
        self.adapter: Adapter = adapter if adapter is not None else InMemoryAdapter()
        self.adapter.attach(self._deliver, self._disconnect)
        self.namespaces: dict[str, Namespace] = {"/": Namespace()}
        self._sockets: dict[str, dict[str, Socket]] = {}  # namespace -> sid -> socket
        self.engine = EngineServer(
            ping_interval_ms=ping_interval_ms,
            ping_timeout_ms=ping_timeout_ms,
            max_payload=max_payload,
            allowed_origins=allowed_origins,
            max_buffer_bytes=max_buffer_bytes,
            on_open=self._on_open,
            on_message=lambda session, data: session.app.on_message(data),
            on_close=lambda session, reason: session.app.on_close(reason),
            admit=self._admit,
            error_body=error_body,
        )

    def add_namespace(self, name: str, namespace: Namespace) -> None:
        self.namespaces[name] = namespace

    def routes(self, path: str = "/socket.io/") -> list[Rule]:
        return engine_routes(self.engine, path)

    def close_all(self) -> None:
        self.engine.close_all()

    def close_connections(self, reason: CloseReason) -> None:
        """Closes every connection, as a lost network would: the official clients reconnect
        (and recover), while the server goes on serving."""
        self.engine.close_sessions(reason)

    def connection_count(self) -> int:
        return self.engine.connection_count()

    def emit(
        self,
        namespace: str,
        event: str,
        *args: Any,
        room: str | list[str] | None = None,
        skip_sid: str | set[str] | None = None,
        meta: dict[str, Any] | None = None,
        local: bool = False,
    ) -> int:
        """Encode once and queue to every matching socket; return how many got it. ``meta``
        travels with the event to other processes (the adapter's ``on_remote_event``);
        ``local``: to this process's sockets only (the adapter is given no packet to send)."""
        packet = sio.event(namespace, event, args)
        frames = encode_frames(packet)
        rooms = [room] if isinstance(room, str) else room
        skip = [skip_sid] if isinstance(skip_sid, str) else (skip_sid or ())
        return self.adapter.broadcast(namespace, frames, rooms, skip, packet=None if local else packet,
                                      meta=meta)

    def sockets_in_room(self, namespace: str, room: str) -> list[Socket]:
        sockets = self._sockets.get(namespace, {})
        found = (sockets.get(sid) for sid in self.adapter.members(namespace, room))
        return [s for s in found if s is not None and s.connected]

    def get_socket(self, namespace: str, sid: str) -> Socket | None:
        socket = self._sockets.get(namespace, {}).get(sid)
        return socket if socket is not None and socket.connected else None

    # -------------------------------------------------------------- internals
    def register(self, socket: Socket) -> None:
        self._sockets.setdefault(socket.namespace, {})[socket.sid] = socket
        self.adapter.join(socket.namespace, socket.sid, socket.sid)

    def unregister(self, socket: Socket) -> None:
        sockets = self._sockets.get(socket.namespace)
        if sockets is not None and sockets.get(socket.sid) is socket:
            del sockets[socket.sid]

    def _deliver(self, namespace: str, sid: str, frames: list[eio.Frame]) -> bool:
        socket = self._sockets.get(namespace, {}).get(sid)
        return socket._send(frames) if socket is not None else False

    def _disconnect(self, namespace: str, sid: str, close: bool) -> None:
        socket = self.get_socket(namespace, sid)
        if socket is None:
            return
        if close:
            socket.close_connection()
        else:
            socket.disconnect()

    def _on_open(self, session: Session) -> None:
        session.app = conn = _Connection(self, session)
        self.probation.started(conn.client)

    def _admit(self, handshake: Handshake) -> Refusal | None:
        if self._app_admit is not None:
            refusal = self._app_admit(handshake)
            if refusal is not None:
                return refusal
        return self.probation.refusal(self.client_address(handshake))
