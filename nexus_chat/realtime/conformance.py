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

from .endpoint import engine_routes
from .engine import EngineServer, Session
from .engineio_packets import message_frame
from .server import Namespace, SocketServer

PING_INTERVAL_MS = 300
PING_TIMEOUT_MS = 200
MAX_PAYLOAD = 1_000_000
CONNECT_TIMEOUT_MS = 1000


class AuthEcho(Namespace):
    """Right after the CONNECT reply, emits ``auth`` with the CONNECT payload."""

    async def on_connect(self, socket, auth):
        socket.emit("auth", auth if auth is not None else {})


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


def make_app() -> tuple[tornado.web.Application, EngineServer, SocketServer]:
    config = dict(ping_interval_ms=PING_INTERVAL_MS, ping_timeout_ms=PING_TIMEOUT_MS, max_payload=MAX_PAYLOAD)
    engine = EngineServer(**config, on_message=_echo)
    server = SocketServer(**config, connect_timeout_ms=CONNECT_TIMEOUT_MS)
    server.add_namespace("/", MainNamespace())
    server.add_namespace("/custom", AuthEcho())
    app = tornado.web.Application(engine_routes(engine, "/engine.io/") + server.routes("/socket.io/"))
    return app, engine, server


async def serve(port: int = 3000) -> None:
    app, engine, server = make_app()
    http = app.listen(port)
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
