"""RFC 6455 framing on an ``asyncio.Protocol``, for a socket whose HTTP upgrade Tornado has
answered (``websocket.py``). Once the 101 is written, nothing of Tornado's HTTP layer is kept
for the socket: no handler, request, headers, ``IOStream`` or coroutine chain suspended for the
socket's life, only the event loop's transport and this object (bench/README.md, idle-conns).

Server side only: frames from the client may be masked (browsers always mask), frames to it are
not; no extensions (no compression is negotiated); a text message must be valid UTF-8.
Behaviour follows Tornado's ``WebSocketProtocol13``: a protocol error aborts the connection, a
message over ``max_message_size`` is closed with 1009, a client's close is echoed.
"""
from __future__ import annotations

import asyncio
import struct

from . import tornado_private

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
MESSAGE_TOO_BIG = 1009, "message too big"   # the close frame's code and text (RFC 6455 7.4.1)
CLOSE_WAIT_S = 5.0   # after our close frame, how long the client has to answer with its own

_H16 = struct.Struct("!BBH")
_H64 = struct.Struct("!BBQ")


def frame_header(opcode: int, length: int) -> bytes:
    """The header of a final, unmasked frame (server to client)."""
    if length < 126:
        return bytes((0x80 | opcode, length))
    if length <= 0xFFFF:
        return _H16.pack(0x80 | opcode, 126, length)
    return _H64.pack(0x80 | opcode, 127, length)


class WebSocketConnection(asyncio.Protocol):
    """One upgraded connection; a subclass overrides ``on_message(str | bytes)`` (each message)
    and ``on_close()`` (once, when the connection is gone, whoever closed it). Frames sent
    before the transport exists (between the 101 and ``connection_made``) are kept and written
    first; bytes the client sent right behind its upgrade request are given to ``early``."""

    __slots__ = ("max_message_size", "transport", "_buf", "_frag", "_frag_opcode", "_pending",
                 "_close_sent", "_client_closed", "_gone", "_abort_timer")

    def __init__(self, max_message_size: int) -> None:
        self.max_message_size = max_message_size
        self.transport: asyncio.Transport | None = None
        self._buf: bytes = b""                   # an incomplete frame
        self._frag: bytearray | None = None      # a fragmented message being assembled
        self._frag_opcode = 0
        self._pending: list[bytes] | None = None  # written before the transport existed
        self._close_sent = False
        self._client_closed = False
        self._gone = False
        self._abort_timer: asyncio.TimerHandle | None = None

    def on_message(self, message: str | bytes) -> None: ...

    def on_close(self) -> None: ...

    def early(self, data: bytes) -> None:
        """Bytes read with the upgrade request (a client may send its first frames at once):
        handled before anything the transport reads."""
        self._buf = self._buf + data

    # ------------------------------------------------------------------ sending
    def send(self, data: bytes, binary: bool = False) -> None:
        """One message in one frame; nothing after our close frame."""
        if self._close_sent or self._gone:
            return
        self._write(frame_header(BINARY if binary else TEXT, len(data)) + data)

    def _write(self, wire: bytes) -> None:
        if self.transport is None:
            if self._pending is None:
                self._pending = []
            self._pending.append(wire)
        else:
            self.transport.write(wire)

    def unsent_bytes(self) -> int:
        if self.transport is None:
            return sum(len(w) for w in self._pending or ())
        return self.transport.get_write_buffer_size()

    def is_closing(self) -> bool:
        return self._close_sent or self._client_closed or self._gone

    def close(self, code: int | None = None, reason: str = "") -> None:
        """Our close frame; the connection ends when the client answers, or after
        ``CLOSE_WAIT_S``."""
        if self._gone:
            return
        if not self._close_sent:
            payload = b"" if code is None else struct.pack(">H", code) + reason.encode()
            self._write(frame_header(CLOSE, len(payload)) + payload)
            self._close_sent = True
        if self._client_closed:
            self._end()
        elif self._abort_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:   # closing while the loop is stopped (shutdown): nothing to wait on
                self.abort()
                return
            self._abort_timer = loop.call_later(CLOSE_WAIT_S, self.abort)

    def abort(self) -> None:
        self._abort_timer = None
        if self.transport is not None:
            self.transport.abort()
        else:
            self._lost()

    def _end(self) -> None:
        if self.transport is not None:
            self.transport.close()   # after what is buffered is written

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport   # type: ignore[assignment]
        if self._gone:               # aborted before it existed
            transport.abort()        # type: ignore[attr-defined]
            return
        pending, self._pending = self._pending, None
        for wire in pending or ():
            self.transport.write(wire)
        if self._close_sent and self._client_closed:
            self._end()
        elif self._buf:
            self.data_received(b"")

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def _lost(self) -> None:
        if self._gone:
            return
        self._gone = True
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        self._buf = b""
        self._frag = None
        self.on_close()

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        pos, end = 0, len(buf)
        while not self._gone and not self._client_closed:
            if end - pos < 2:
                break
            b0, b1 = buf[pos], buf[pos + 1]
            opcode, length, head = b0 & 0x0F, b1 & 0x7F, 2
            if b0 & 0x70 or (opcode & 0x8 and (length >= 126 or not b0 & 0x80)):
                self.abort()   # an extension we did not agree to, or a bad control frame
                return
            if length == 126:
                if end - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif length == 127:
                if end - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 10], "big")
                head = 10
            if length + (len(self._frag) if self._frag is not None else 0) > self.max_message_size:
                self.close(*MESSAGE_TOO_BIG)
                self.abort()
                return
            masked = b1 & 0x80
            start = pos + head + (4 if masked else 0)
            if end - start < length:
                break
            payload = buf[start:start + length]
            if masked:
                payload = tornado_private.websocket_mask(buf[pos + head:start], payload)
            pos = start + length
            self._frame(b0 & 0x80, opcode, payload)
        self._buf = buf[pos:] if pos < end and not self._gone else b""

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode == 0:
            if self._frag is None:
                self.abort()   # nothing to continue
                return
            self._frag += payload
            if not fin:
                return
            opcode, payload, self._frag = self._frag_opcode, bytes(self._frag), None
        elif opcode in (TEXT, BINARY):
            if self._frag is not None:
                self.abort()   # a new message before the last one ended
                return
            if not fin:
                self._frag, self._frag_opcode = bytearray(payload), opcode
                return
        if opcode == TEXT:
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                self.abort()
                return
            self.on_message(text)
        elif opcode == BINARY:
            self.on_message(payload)
        elif opcode == CLOSE:
            self._client_closed = True
            code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
            self.close(code)   # echo the client's code (RFC 6455 5.5.1); then the TCP close
        elif opcode == PING:
            if not self._close_sent:
                self._write(frame_header(PONG, len(payload)) + payload)
        elif opcode == PONG:
            pass
        else:
            self.abort()
