"""Engine.IO WebSocket transport: Tornado answers the HTTP upgrade (``EngineWebSocketHandler``),
then the socket is handed to our own framing (``wsframes.WebSocketConnection``) and nothing of
the HTTP request is kept: a Tornado ``WebSocketHandler`` kept ~12 KiB a socket for its life
(handler, request, headers, ``IOStream``, a suspended coroutine chain), most of an idle socket.

A socket either carries a session from the start (no ``sid``), or probes an existing polling
session (``sid`` given): ``2probe`` -> ``3probe``, then ``5`` moves the session over.
"""

from __future__ import annotations

from tornado import web
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketProtocol13

from . import engineio_packets as eio
from . import tornado_private
from .engine import EngineServer, Handshake, Session, log
from .refusals import BAD_REQUEST, UNKNOWN_SID, Refusal
from .reasons import CloseReason
from .wsframes import WebSocketConnection


class EngineWebSocketHandler(web.RequestHandler):
    """The upgrade request: refusals in the protocol's terms, the WebSocket handshake checks
    as Tornado's ``WebSocketHandler`` makes them (same statuses), the 101, then the hand-over."""

    def initialize(self, engine: EngineServer) -> None:
        self.engine = engine

    async def get(self, *args: object, **kwargs: object) -> None:
        handshake = Handshake.from_request(self.request)
        refusal = self._refusal(handshake)
        if refusal is not None:
            self.set_status(refusal.status)
            if refusal.retry_after_s is not None:
                self.set_header("Retry-After", str(refusal.retry_after_s))
            self.set_header("Content-Type", "application/json")
            self.finish(self.engine.error_body(refusal, self.request))
            return
        headers = self.request.headers
        if "upgrade" not in (s.strip().lower() for s in headers.get("Connection", "").split(",")):
            self.set_status(400)
            self.finish('"Connection" must be "Upgrade".')
            return
        if headers.get("Sec-WebSocket-Version") not in ("7", "8", "13"):
            self.set_status(426, "Upgrade Required")
            self.set_header("Sec-WebSocket-Version", "13")
            return
        if not (headers.get("Host") and headers.get("Sec-WebSocket-Key")):
            self.set_status(400)
            self.finish()
            return
        self.clear_header("Content-Type")
        self.set_status(101)
        self.set_header("Upgrade", "websocket")
        self.set_header("Connection", "Upgrade")
        self.set_header("Sec-WebSocket-Accept",
                        WebSocketProtocol13.compute_accept_value(headers["Sec-WebSocket-Key"]))
        written = self.finish()   # the 101 (and its access-log line)
        stream = self.detach()
        ws = EngineWebSocket(self.engine)
        # Right after the admission check, with no await in between: no other handshake can
        # slip past a cap before this one's session is counted. Its first frames wait in ``ws``.
        ws.begin(self.get_query_argument("sid", None), handshake)
        try:
            await written
            await tornado_private.hand_over(stream, ws)
        except (StreamClosedError, OSError):   # the client went away before the hand-over
            stream.close()
            ws.abort()

    def _refusal(self, handshake: Handshake) -> Refusal | None:
        refusal = self.engine.check_request(self.request, "websocket")
        if refusal is not None:
            return refusal
        sid = self.get_query_argument("sid", None)
        if sid and self.engine.lookup(sid) is None:
            return Refusal.protocol(UNKNOWN_SID)
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            return Refusal.protocol(BAD_REQUEST)
        if not sid:
            return self.engine.admit(handshake)
        return None


class EngineWebSocket(WebSocketConnection):
    """An upgraded socket carrying a session, or probing one (the engine's ``FrameTransport``)."""

    __slots__ = ("engine", "session", "probing")

    def __init__(self, engine: EngineServer) -> None:
        super().__init__(engine.max_payload)
        self.engine = engine
        self.session: Session | None = None  # set once this socket carries the session
        self.probing: Session | None = None  # set while probing an upgrade

    def begin(self, sid: str | None, handshake: Handshake) -> None:
        if sid:
            session = self.engine.lookup(sid)
            # A second websocket, or one for an upgraded session, is accepted
            # and closed at once, as the reference server does.
            if session is None or not session.can_upgrade():
                self.close()
                return
            self.probing = session
            session.begin_probe(self)
            return
        session = self.engine.open_session(handshake, "websocket")
        session.ws = self
        self.session = session
        self.send_frame(session.open_packet())
        self.engine.started(session)

    def on_message(self, message: str | bytes) -> None:
        try:
            packet = eio.decode_packet(message)
        except eio.ProtocolError:
            packet = None
        if self.probing is not None:
            self._on_probe_message(self.probing, packet)
        elif self.session is not None:
            if packet is None:
                self.session.close(CloseReason.PARSE_ERROR, graceful=False)
            else:
                self.session.receive(packet)

    def _on_probe_message(self, session: Session, packet: eio.Packet | None) -> None:
        if packet == (eio.PING, "probe") and session.probe is self:
            self.send_frame(eio.text_frame(eio.PONG, "probe"))
            session.probe_answered()
        elif packet == (eio.UPGRADE, "") and session.probe is self and not session.closed:
            self.probing = None
            self.session = session
            session.finish_upgrade(self)
        elif packet is not None and packet.type == eio.NOOP:
            pass
        else:
            log.info("engine.io session %s: upgrade aborted", session.sid)
            session.abort_probe(self)
            self.probing = None
            self.close()

    def on_close(self) -> None:
        if self.probing is not None:
            self.probing.abort_probe(self)
            self.probing = None
        elif self.session is not None:
            self.session.close(CloseReason.TRANSPORT_CLOSE, graceful=False)

    # ------------------------------------------------------------------ FrameTransport
    def send_frame(self, frame: eio.Frame) -> None:
        self.send(frame.data, frame.binary)
