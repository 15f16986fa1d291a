"""The private Tornado APIs the WebSocket transport relies on, in one place.

- ``BaseIOStream._read_buffer`` / ``_read_buffer_size``: what the HTTP layer had read past the
  upgrade request when the socket is handed over (a client may send its first frames without
  waiting for the 101); ``hand_over`` gives them to the new owner before anything else.
- ``tornado.util._websocket_mask``: unmasking a client's frame (Tornado's C speedup when it
  is built, else its Python fallback).

They are checked when this module is imported: a Tornado without them fails at start-up
with a clear message instead of silently losing bytes. ``TESTED`` is the range of Tornado
versions the suite ran against (``tests/unit/test_tornado_private.py``).
"""
from __future__ import annotations

import asyncio

import tornado
import tornado.util
from tornado.iostream import BaseIOStream, IOStream, StreamClosedError

TESTED = ((6, 4), (7, 0))    # [from, to)


def check() -> None:
    """Raises RuntimeError when the private APIs are gone (a Tornado this was not made for)."""
    missing = []
    names = BaseIOStream.__init__.__code__.co_names
    for name in ("_read_buffer", "_read_buffer_size"):
        if name not in names:
            missing.append(f"BaseIOStream.{name}")
    if not callable(getattr(tornado.util, "_websocket_mask", None)):
        missing.append("tornado.util._websocket_mask")
    if missing:
        raise RuntimeError(f"tornado {tornado.version} lacks {', '.join(missing)}; "
                           f"nexus_chat.realtime was made for tornado {TESTED[0]} to {TESTED[1]} (exclusive)")


def version_tested() -> bool:
    return TESTED[0] <= tornado.version_info[:2] < TESTED[1]


def websocket_mask(mask: bytes, data: bytes) -> bytes:
    return tornado.util._websocket_mask(mask, data)


async def hand_over(stream: IOStream, protocol: asyncio.Protocol) -> None:
    """Moves a detached, flushed stream's connection to an asyncio transport driving
    ``protocol`` (which gets any bytes already read through ``protocol.early``); the stream
    is closed, its socket's descriptor duplicated first so that the connection stays open.
    StreamClosedError when the client is already gone."""
    if stream.closed():
        raise StreamClosedError()
    leftover = bytes(stream._read_buffer[:stream._read_buffer_size])   # type: ignore[attr-defined]
    if leftover:
        protocol.early(leftover)   # type: ignore[attr-defined]
    sock = stream.socket.dup()
    stream.close()
    await asyncio.get_running_loop().connect_accepted_socket(lambda: protocol, sock)


check()
