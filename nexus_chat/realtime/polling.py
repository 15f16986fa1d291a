"""Engine.IO HTTP long-polling transport on a plain Tornado RequestHandler."""

from __future__ import annotations

import asyncio

from tornado import web

from . import engineio_packets as eio
from .connection_order import accept_order
from .engine import DuplicatePoll, EngineServer, Handshake, Session
from .refusals import BAD_HANDSHAKE_METHOD, BAD_REQUEST, PAYLOAD_TOO_LARGE, UNKNOWN_SID, Refusal
from .reasons import CloseReason

TEXT_PLAIN = "text/plain; charset=UTF-8"


@web.stream_request_body
class PollingHandler(web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

    def initialize(self, engine: EngineServer) -> None:
        self.engine = engine
        self._body = bytearray()
        self._too_large = False
        self._poll: asyncio.Future[bytes] | None = None
        self._session: Session | None = None

    # Tornado's generic protections do not apply to this endpoint: the
    # allow-list below is the origin check, and responses must not be cached.
    def check_xsrf_cookie(self) -> None:
        pass

    def check_trusted_origin(self, origin: str) -> bool:
        return self.engine.origin_allowed(origin)

    def compute_etag(self) -> None:
        return None

    def prepare(self) -> None:
        origin = self.request.headers.get("Origin")
        if origin is not None and self.engine.origin_allowed(origin):
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Credentials", "true")
            self.add_header("Vary", "Origin")
        self.set_header("Cache-Control", "no-store")

    def data_received(self, chunk: bytes) -> None:
        if self._too_large:
            return
        if len(self._body) + len(chunk) > self.engine.max_payload:
            self._too_large = True
            self._body = bytearray()
        else:
            self._body += chunk

    def options(self) -> None:
        self.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        requested = self.request.headers.get("Access-Control-Request-Headers")
        if requested:
            self.set_header("Access-Control-Allow-Headers", requested)
        self.set_status(204)

    async def get(self) -> None:
        await self._handle()

    async def post(self) -> None:
        await self._handle()

    async def put(self) -> None:
        await self._handle()

    async def delete(self) -> None:
        await self._handle()

    async def patch(self) -> None:
        await self._handle()

    async def head(self) -> None:
        await self._handle()

    def on_connection_close(self) -> None:
        if self._poll is not None and self._session is not None:
            self._session.cancel_poll(self._poll)

    # ------------------------------------------------------------------
    def _error(self, refusal: Refusal | int) -> None:
        if isinstance(refusal, int):
            refusal = Refusal.protocol(refusal)
        self.set_status(refusal.status)
        if refusal.retry_after_s is not None:
            self.set_header("Retry-After", str(refusal.retry_after_s))
        self.set_header("Content-Type", "application/json")
        self.finish(self.engine.error_body(refusal, self.request))

    def _text(self, body: bytes) -> None:
        self.set_header("Content-Type", TEXT_PLAIN)
        self.finish(body)

    async def _handle(self) -> None:
        engine, method = self.engine, self.request.method
        refusal = engine.check_request(self.request, "polling")
        if refusal is not None:
            return self._error(refusal)
        sid = self.get_query_argument("sid", None)
        if not sid:
            if method != "GET":
                return self._error(BAD_HANDSHAKE_METHOD)
            handshake = Handshake.from_request(self.request)
            refusal = engine.admit(handshake)
            if refusal is not None:
                return self._error(refusal)
            session = engine.open_session(handshake, "polling")
            self._text(eio.encode_payload([session.open_packet()]))
            engine.started(session)
            return None
        session = engine.lookup(sid)
        if session is None:
            return self._error(UNKNOWN_SID)
        if session.transport != "polling" or (session.closed and method != "GET"):
            return self._error(BAD_REQUEST)
        if method == "GET":
            return await self._get(session)
        if method == "POST":
            return self._post(session)
        return self._error(BAD_REQUEST)

    async def _get(self, session: Session) -> None:
        poll = session.poll(accept_order(self.request))
        self._session, self._poll = session, poll
        try:
            body = await poll
        except asyncio.CancelledError:
            return None  # the client went away
        except DuplicatePoll:
            # One of two concurrent GETs: the other one gets CLOSE, this one an error.
            session.close(CloseReason.TRANSPORT_ERROR, graceful=False)
            return self._error(BAD_REQUEST)
        finally:
            self._poll = None
        self._text(body)
        return None

    def _post(self, session: Session) -> None:
        if self._too_large:
            session.close(CloseReason.PAYLOAD_TOO_LARGE, graceful=False)
            return self._error(PAYLOAD_TOO_LARGE)
        try:
            packets = eio.decode_payload(bytes(self._body))
        except eio.ProtocolError:
            session.close(CloseReason.PARSE_ERROR, graceful=False)
            return self._error(BAD_REQUEST)
        for packet in packets:
            session.receive(packet)
            if session.closed:
                break
        if session.closed and self._closed_by_error(packets):
            return self._error(BAD_REQUEST)
        self._text(b"ok")
        return None

    @staticmethod
    def _closed_by_error(packets: list[eio.Packet]) -> bool:
        """True unless the session ended because the client sent CLOSE."""
        return not any(p.type == eio.CLOSE for p in packets)
