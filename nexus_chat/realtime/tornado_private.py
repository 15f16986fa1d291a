"""The private Tornado APIs the WebSocket transport relies on, in one place.

- ``WebSocketProtocol13._write_frame``: ``write_message()`` wraps every write in an asyncio
  Task so that its Future can be awaited. Nobody awaits ours (a slow client must not hold the
  others up; its backlog is bounded by ``unsent_bytes``), and at group fan-out that Task per
  frame was most of the server's CPU (bench/README.md). Same bytes on the wire, no Task.
- ``BaseIOStream._write_buffer``: how many bytes a connection has not yet handed to the
  kernel, the backpressure measure of a socket's send buffer.
- ``WebSocketHandler._detach_stream``: called once by the upgrade; Tornado's sets seven
  instance attributes on the handler (``write``, ``finish``… made to raise), which grows every
  socket's handler ``__dict__`` by ~0.8 KiB. ``detach_stream`` is the same without them (the
  transport never calls those methods after the upgrade).
- ``RequestHandler._headers``: the headers of the 101 answer, written before ``open()`` and
  never used again by a WebSocket; ``shed_http_state`` drops them (and the template namespace
  ``ui``, as Tornado's own ``_break_cycles`` does at the end), ~1.5 KiB per idle socket.

They are checked when this module is imported: a Tornado without them fails at start-up
with a clear message instead of silently reporting an empty buffer. ``TESTED`` is the range
of Tornado versions the suite ran against (``tests/unit/test_tornado_private.py``).
"""
from __future__ import annotations

import tornado
from tornado.iostream import BaseIOStream, IOStream
from tornado.web import RequestHandler
from tornado.websocket import WebSocketHandler, WebSocketProtocol, WebSocketProtocol13

TESTED = ((6, 4), (7, 0))    # [from, to)
TEXT, BINARY = 0x1, 0x2


def check() -> None:
    """Raises RuntimeError when the private APIs are gone (a Tornado this was not made for)."""
    missing = []
    if not callable(getattr(WebSocketProtocol13, "_write_frame", None)):
        missing.append("WebSocketProtocol13._write_frame")
    if "_write_buffer" not in BaseIOStream.__init__.__code__.co_names:
        missing.append("BaseIOStream._write_buffer")
    if not callable(getattr(WebSocketHandler, "_detach_stream", None)):
        missing.append("WebSocketHandler._detach_stream")
    if "_headers" not in RequestHandler.clear.__code__.co_names:
        missing.append("RequestHandler._headers")
    if missing:
        raise RuntimeError(f"tornado {tornado.version} lacks {', '.join(missing)}; "
                           f"nexus_chat.realtime was made for tornado {TESTED[0]} to {TESTED[1]} (exclusive)")


def version_tested() -> bool:
    return TESTED[0] <= tornado.version_info[:2] < TESTED[1]


def write_frame(conn: WebSocketProtocol, data: bytes, *, binary: bool) -> None:
    """One final frame, written without an awaitable (IOStream silences the futures of
    writes that fail on a closed stream). Raises StreamClosedError on a closed stream."""
    conn._write_frame(True, BINARY if binary else TEXT, data)  # type: ignore[attr-defined]


def detach_stream(handler: WebSocketHandler) -> IOStream:
    """The upgraded connection's stream, taken from the HTTP layer (``RequestHandler.detach``)."""
    return handler.detach()


def shed_http_state(handler: WebSocketHandler) -> None:
    """After the upgrade (from ``open()``): drop what only an HTTP answer needs."""
    handler._headers = None   # type: ignore[assignment]
    handler.ui = None         # type: ignore[assignment]


def unsent_bytes(conn: WebSocketProtocol | None) -> int:
    """Bytes written to the connection's stream but not yet handed to the kernel."""
    stream = conn.stream if conn is not None else None   # type: ignore[attr-defined]
    return len(stream._write_buffer) if stream is not None else 0


check()
