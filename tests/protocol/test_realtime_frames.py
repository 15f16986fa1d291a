"""WebSocket framing as the server reads it (nexus_chat/realtime/wsframes.py), over a raw
TCP socket to the Engine.IO echo server, beside test_realtime_wsframes.py (the upgrade, the close
handshake, one message over the limit): frames sharing one TCP write, a frame split over many,
fragmented messages with a control frame inside, the 16- and 64-bit lengths, and the limits."""

import asyncio
import base64
import os
import struct

import pytest

from nexus_chat.realtime.conformance import MAX_PAYLOAD

from .realtime_support import TIMEOUT

TEXT, CONT, CLOSE, PING, PONG = 0x1, 0x0, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, length: int | None = None) -> bytes:
    """A masked client frame; ``length`` overrides the declared payload length."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def open_raw(fx):
    reader, writer = await asyncio.open_connection("127.0.0.1", fx.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{fx.port}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert head.startswith(b"HTTP/1.1 101")
    opcode, data = await read_frame(reader)
    assert opcode == TEXT and data.startswith(b"0{")   # the Engine.IO open packet
    return reader, writer


async def read_frame(reader):
    """(opcode, payload) of the next server frame, skipping Engine.IO pings; None once closed."""
    while True:
        try:
            b0, b1 = await asyncio.wait_for(reader.readexactly(2), TIMEOUT)
        except asyncio.IncompleteReadError:
            return None
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await reader.readexactly(8))[0]
        data = await reader.readexactly(n)
        if (b0 & 0x0F, data) != (TEXT, b"2"):
            return b0 & 0x0F, data


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_frames_in_one_write_are_each_handled_in_order(fx):
    reader, writer = await open_raw(fx)
    writer.write(b"".join(frame(TEXT, f"4m{i}".encode()) for i in range(5)))
    for i in range(5):
        assert await read_frame(reader) == (TEXT, f"4m{i}".encode())
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_frame_split_over_many_writes(fx):
    reader, writer = await open_raw(fx)
    data = frame(TEXT, b"4" + b"x" * 300) + frame(TEXT, b"4next")   # a 16-bit length, then another
    for i in range(0, len(data), 7):
        writer.write(data[i:i + 7])
        await writer.drain()
        await asyncio.sleep(0.001)
    assert await read_frame(reader) == (TEXT, b"4" + b"x" * 300)
    assert await read_frame(reader) == (TEXT, b"4next")
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_fragmented_message_with_a_ping_inside(fx):
    reader, writer = await open_raw(fx)
    writer.write(frame(TEXT, b"4hel", fin=False) + frame(PING, b"p") + frame(CONT, b"l", fin=False)
                 + frame(CONT, b"o"))
    assert await read_frame(reader) == (PONG, b"p")
    assert await read_frame(reader) == (TEXT, b"4hello")
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_64_bit_length(fx):
    reader, writer = await open_raw(fx)
    big = b"4" + b"y" * 70_000
    writer.write(frame(TEXT, big))
    assert await read_frame(reader) == (TEXT, big)
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_fragments_adding_up_over_the_limit_close_with_1009(fx):
    reader, writer = await open_raw(fx)
    half = b"z" * (MAX_PAYLOAD // 2 + 1)
    writer.write(frame(TEXT, b"4" + half, fin=False))
    await writer.drain()
    await asyncio.sleep(0.2)   # all read by the server, so that its close resets nothing unread
    writer.write(frame(CONT, b"", length=len(half)))   # the header is enough
    assert await read_frame(reader) == (CLOSE, struct.pack("!H", 1009) + b"message too big")
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
@pytest.mark.parametrize("bad", [
    frame(TEXT, b"4x", rsv=0x40),                 # an extension nobody negotiated
    frame(PING, b"p", fin=False),                 # a fragmented control frame
    frame(TEXT, b"4a", fin=False) + frame(TEXT, b"4b"),   # a new message inside a fragmented one
    frame(PING, b"p" * 126),                      # a control frame too long
], ids=["rsv", "fragmented-control", "interleaved", "long-control"])
async def test_protocol_violations_drop_the_connection(fx, bad):
    reader, writer = await open_raw(fx)
    writer.write(bad + frame(TEXT, b"4after"))
    assert await read_frame(reader) is None   # closed, and nothing after the bad frame handled
    writer.close()
