"""The fixture server the official Engine.IO / Socket.IO protocol suites expect.

``/engine.io/`` is a bare Engine.IO echo server; ``/socket.io/`` serves the
namespaces ``/`` and ``/custom``, both built on the product's protocol code.
Run with ``python -m nexus_chat.realtime.conformance [port]``.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import tornado.web
from tornado.ioloop import IOLoop

from .endpoint import engine_routes
from .connection_order import ConnectionOrderHTTPServer
from .engine import EngineServer, Session
from .engineio_packets import message_frame
from .server import Namespace, SocketServer

PING_INTERVAL_MS = 300
PING_TIMEOUT_MS = 200
MAX_PAYLOAD = 1_000_000
# The reference configuration says 1000, but the suites' heartbeat tests keep a session
# without a namespace for three ping cycles (~1 s, 5 s allowed): on a loaded machine 1000
# closed those sessions mid-test. No test of the suites depends on the connect timeout.
CONNECT_TIMEOUT_MS = 5000


# The suites read the CONNECT reply, then start listening for the ``auth`` packet. Their
# WebSocket client (ws 8.5) hands every frame of one TCP read to the listeners synchronously,
# so an ``auth`` frame read together with the CONNECT reply reaches no listener and the test
# sees the next ping instead. A loaded machine coalesces the two reads; sending ``auth`` a
# moment later keeps them apart. Well below pingInterval, so no ping comes in between.
AUTH_ECHO_DELAY_S = 0.05


class AuthEcho(Namespace):
    """Shortly after the CONNECT reply, emits ``auth`` with the CONNECT payload."""

    async def on_connect(self, socket, auth):
        payload = auth if auth is not None else {}
        IOLoop.current().call_later(AUTH_ECHO_DELAY_S, socket.emit, "auth", payload)


class MainNamespace(AuthEcho):
    async def on_event(self, socket, event, args):
        if event == "message":
            socket.emit("message-back", *args)
            return None
        if event == "message-with-ack":
            return args
        return None


def _echo(session: Session, data: str | bytes) -> None:
    session.send([message_frame(data)])


def make_app(connect_timeout_ms: int = CONNECT_TIMEOUT_MS) -> tuple[tornado.web.Application, EngineServer, SocketServer]:
    config = dict(ping_interval_ms=PING_INTERVAL_MS, ping_timeout_ms=PING_TIMEOUT_MS, max_payload=MAX_PAYLOAD)
    engine = EngineServer(**config, on_message=_echo)
    server = SocketServer(**config, connect_timeout_ms=connect_timeout_ms)
    server.add_namespace("/", MainNamespace())
    server.add_namespace("/custom", AuthEcho())
    app = tornado.web.Application(engine_routes(engine, "/engine.io/") + server.routes("/socket.io/"))
    return app, engine, server


async def serve(port: int = 3000) -> None:
    app, engine, server = make_app()
    http = ConnectionOrderHTTPServer(app)
    http.listen(port)
    logging.getLogger("nexus_chat.realtime").info("conformance server on http://localhost:%d", port)
    try:
        await asyncio.Event().wait()
    finally:
        engine.close_all()
        server.close_all()
        http.stop()


def main(port: int = 3000) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
