"""Engine.IO WebSocket transport on Tornado's WebSocketHandler.

A handler either carries a session from the start (no ``sid``), or probes an
existing polling session (``sid`` given): ``2probe`` -> ``3probe``, then ``5``
moves the session over.
"""

from __future__ import annotations


from tornado import websocket
from tornado.iostream import IOStream, StreamClosedError

from . import engineio_packets as eio
from . import tornado_private
from .engine import EngineServer, Handshake, Session, log
from .refusals import BAD_REQUEST, UNKNOWN_SID, Refusal
from .reasons import CloseReason


class EngineWebSocketHandler(websocket.WebSocketHandler):
    def initialize(self, engine: EngineServer) -> None:
        self.engine = engine
        self.session: Session | None = None  # set once this socket carries the session
        self.probing: Session | None = None  # set while probing an upgrade

    @property
    def max_message_size(self) -> int:
        return self.engine.max_payload

    def check_origin(self, origin: str) -> bool:
        return self.engine.origin_allowed(origin)

    def get_compression_options(self) -> None:
        return None

    async def get(self, *args: object, **kwargs: object) -> None:
        refusal = self._refusal()
        if refusal is not None:
            self.set_status(refusal.status)
            if refusal.retry_after_s is not None:
                self.set_header("Retry-After", str(refusal.retry_after_s))
            self.set_header("Content-Type", "application/json")
            self.finish(self.engine.error_body(refusal, self.request))
            return
        await super().get(*args, **kwargs)

    def _refusal(self) -> Refusal | None:
        refusal = self.engine.check_request(self.request, "websocket")
        if refusal is not None:
            return refusal
        sid = self.get_query_argument("sid", None)
        if sid and self.engine.lookup(sid) is None:
            return Refusal.protocol(UNKNOWN_SID)
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            return Refusal.protocol(BAD_REQUEST)
        if not sid:
            # open() runs right after the upgrade, with no await in between: no other
            # handshake can slip past a cap before this one's session is counted.
            return self.engine.admit(Handshake.from_request(self.request))
        return None

    def _detach_stream(self) -> IOStream:   # Tornado's, minus seven attributes per socket (tornado_private)
        return tornado_private.detach_stream(self)

    def open(self, *args: object, **kwargs: object) -> None:
        # Small frames must not wait for the peer's delayed ACK (Nagle): without this, delivery
        # p99 was ~35 ms at a few hundred messages/s, against ~5 ms with it.
        self.set_nodelay(True)
        tornado_private.shed_http_state(self)   # the 101 answer is written: its headers are done
        sid = self.get_query_argument("sid", None)
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
        session = self.engine.open_session(Handshake.from_request(self.request), "websocket")
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

    # ------------------------------------------------------------------
    def send_frame(self, frame: eio.Frame) -> None:
        conn = self.ws_connection
        if conn is None or conn.is_closing():
            return
        try:
            tornado_private.write_frame(conn, frame.data, binary=frame.binary)
        except StreamClosedError:
            return

    def unsent_bytes(self) -> int:
        return tornado_private.unsent_bytes(self.ws_connection)
