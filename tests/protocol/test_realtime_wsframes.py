"""WebSocket framing as the server reads and writes it after the upgrade
(nexus_chat/realtime/wsframes.py), over raw TCP against the conformance fixture server: what a
client library would otherwise hide. The upgrade and its refusals, frames sent before the 101
arrives, frames sharing one TCP write or split over many, fragmented messages with a control
frame inside, the 16- and 64-bit lengths, the limits, protocol violations and the close
handshake. Paths: `/socket.io/` for Socket.IO packets, `/engine.io/` (an echo) for frames."""

import asyncio
import base64
import hashlib
import os
import struct

import pytest

from nexus_chat.realtime.conformance import MAX_PAYLOAD

from .realtime_support import TIMEOUT

TEXT, CONT, CLOSE, PING, PONG = 0x1, 0x0, 0x8, 0x9, 0xA
KEY = base64.b64encode(os.urandom(16)).decode()
ACCEPT = base64.b64encode(hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()


def upgrade_request(path="/socket.io/", version="13", key=KEY) -> bytes:
    lines = [f"GET {path}?EIO=4&transport=websocket HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Version: {version}"]
    if key:
        lines.append(f"Sec-WebSocket-Key: {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(payload: bytes | str, opcode=TEXT, *, fin=True, rsv=0, length=None) -> bytes:
    """A masked client frame (``length`` overrides the announced length)."""
    data = payload.encode() if isinstance(payload, str) else payload
    n = len(data) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n <= 0xFFFF:
        head += struct.pack("!BH", 0x80 | 126, n)
    else:
        head += struct.pack("!BQ", 0x80 | 127, n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def read_frame(reader):
    """(opcode, payload) of the next server frame, or None at EOF."""
    try:
        b0, b1 = await asyncio.wait_for(reader.readexactly(2), TIMEOUT)
    except asyncio.IncompleteReadError:
        return None
    assert not b1 & 0x80, "server frames are not masked"
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    return b0 & 0x0F, await reader.readexactly(n)


async def next_message(reader):
    """The next frame that is not an Engine.IO ping, or None at EOF."""
    while True:
        got = await read_frame(reader)
        if got is None or got != (TEXT, b"2"):
            return got


async def upgraded(fx, path="/socket.io/", first_bytes=b""):
    """A raw connection past the 101 (``first_bytes`` sent along with the request, before the
    answer), and the open packet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", fx.port)
    writer.write(upgrade_request(path) + first_bytes)
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)).decode()
    assert head.startswith("HTTP/1.1 101"), head
    assert f"sec-websocket-accept: {ACCEPT}".lower() in head.lower()
    opcode, opened = await read_frame(reader)
    assert opcode == TEXT and opened.startswith(b"0{")   # the Engine.IO open packet
    return reader, writer


async def echo(fx):
    return await upgraded(fx, "/engine.io/")


# ---- the upgrade and Socket.IO packets ------------------------------------------------------
@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_frames_sent_with_the_upgrade_request_are_read(fx):
    reader, writer = await upgraded(fx, first_bytes=frame("40"))
    assert (await next_message(reader))[1].startswith(b'40{"sid":')
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_fragmented_message_is_one_packet(fx):
    reader, writer = await upgraded(fx)
    writer.write(frame("4", fin=False) + frame(b"", PING) + frame("0", CONT))
    assert await read_frame(reader) == (PONG, b"")   # the ping between the fragments
    assert (await next_message(reader))[1].startswith(b'40{"sid":')
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_ping_is_answered_with_its_payload(fx):
    reader, writer = await upgraded(fx)
    writer.write(frame(b"hello", PING))
    assert await read_frame(reader) == (PONG, b"hello")
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_message_over_max_payload_is_closed_with_1009(fx):
    reader, writer = await upgraded(fx)
    writer.write(frame(b"", length=fx.engine.max_payload + 1)[:14])   # the header says it all
    opcode, payload = await read_frame(reader)
    assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == 1009
    assert await read_frame(reader) is None
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_the_clients_close_is_echoed_and_the_connection_ends(fx):
    reader, writer = await upgraded(fx)
    writer.write(frame(struct.pack("!H", 1000), CLOSE))
    assert await read_frame(reader) == (CLOSE, struct.pack("!H", 1000))
    assert await read_frame(reader) is None
    await asyncio.sleep(0.05)
    assert fx.engine.connection_count() == 0
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_text_that_is_not_utf8_ends_the_connection(fx):
    reader, writer = await upgraded(fx)
    writer.write(frame(b"4\xff\xfe"))
    assert await next_message(reader) is None
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_continuation_with_nothing_to_continue_ends_the_connection(fx):
    reader, writer = await upgraded(fx)
    writer.write(frame("40", CONT))
    assert await next_message(reader) is None
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
@pytest.mark.parametrize("version,key,status", [("12", KEY, b"426"), ("13", "", b"400")])
async def test_an_upgrade_without_a_version_or_key_we_speak_is_refused(fx, version, key, status):
    reader, writer = await asyncio.open_connection("127.0.0.1", fx.port)
    writer.write(upgrade_request(version=version, key=key))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert head.split(b" ")[1] == status, head
    assert fx.engine.connection_count() == 0
    writer.close()


# ---- frames (the Engine.IO echo) ------------------------------------------------------------
@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_frames_in_one_write_are_each_handled_in_order(fx):
    reader, writer = await echo(fx)
    writer.write(b"".join(frame(f"4m{i}") for i in range(5)))
    for i in range(5):
        assert await next_message(reader) == (TEXT, f"4m{i}".encode())
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_frame_split_over_many_writes(fx):
    reader, writer = await echo(fx)
    data = frame(b"4" + b"x" * 300) + frame(b"4next")   # a 16-bit length, then another
    for i in range(0, len(data), 7):
        writer.write(data[i:i + 7])
        await writer.drain()
        await asyncio.sleep(0.001)
    assert await next_message(reader) == (TEXT, b"4" + b"x" * 300)
    assert await next_message(reader) == (TEXT, b"4next")
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_fragmented_message_with_a_ping_inside(fx):
    reader, writer = await echo(fx)
    writer.write(frame(b"4hel", fin=False) + frame(b"p", PING) + frame(b"l", CONT, fin=False)
                 + frame(b"o", CONT))
    assert await next_message(reader) == (PONG, b"p")
    assert await next_message(reader) == (TEXT, b"4hello")
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_64_bit_length(fx):
    reader, writer = await echo(fx)
    big = b"4" + b"y" * 70_000
    writer.write(frame(big))
    assert await next_message(reader) == (TEXT, big)
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_fragments_adding_up_over_the_limit_close_with_1009(fx):
    reader, writer = await echo(fx)
    half = b"z" * (MAX_PAYLOAD // 2 + 1)
    writer.write(frame(b"4" + half, fin=False))
    await writer.drain()
    await asyncio.sleep(0.2)   # all read by the server, so that its close resets nothing unread
    writer.write(frame(b"", CONT, length=len(half)))   # the header is enough
    assert await next_message(reader) == (CLOSE, struct.pack("!H", 1009) + b"message too big")
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
@pytest.mark.parametrize("bad", [
    frame(b"4x", rsv=0x40),                 # an extension nobody negotiated
    frame(b"p", PING, fin=False),                 # a fragmented control frame
    frame(b"4a", fin=False) + frame(b"4b"),   # a new message inside a fragmented one
    frame(b"p" * 126, PING),                      # a control frame too long
], ids=["rsv", "fragmented-control", "interleaved", "long-control"])
async def test_protocol_violations_drop_the_connection(fx, bad):
    reader, writer = await echo(fx)
    writer.write(bad + frame(b"4after"))
    assert await next_message(reader) is None   # closed, and nothing after the bad frame handled
    writer.close()
