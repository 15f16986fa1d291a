"""Accept order of HTTP connections: of two concurrent long-polling GETs for one session, the
one on the connection opened first is the original, whichever request is read first (a
client's two requests on two new connections may be read in either order on a busy machine)."""

from __future__ import annotations

import itertools

from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPServerRequest
from tornado.iostream import IOStream

_accepted = itertools.count(1)


class ConnectionOrderHTTPServer(HTTPServer):
    """An HTTPServer that numbers connections as it accepts them (``stream.accept_order``),
    so that of two concurrent long-polling GETs the one sent first can be told apart."""

    def handle_stream(self, stream: IOStream, address: tuple) -> None:
        stream.accept_order = next(_accepted)  # type: ignore[attr-defined]
        super().handle_stream(stream, address)


def accept_order(request: HTTPServerRequest) -> int:
    stream = getattr(request.connection, "stream", None)
    return getattr(stream, "accept_order", 0)
