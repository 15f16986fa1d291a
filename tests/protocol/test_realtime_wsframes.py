"""The WebSocket framing the transport uses after the upgrade (nexus_chat/realtime/wsframes.py),
over raw TCP against the conformance fixture server: what a client library would otherwise
hide (frames sent before the 101 arrives, fragments, control frames, limits, the close
handshake) and the upgrade's own refusals."""

import asyncio
import base64
import hashlib
import os
import struct

import pytest

from .realtime_support import TIMEOUT

KEY = base64.b64encode(os.urandom(16)).decode()
ACCEPT = base64.b64encode(hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()


def upgrade_request(path="/socket.io/", version="13", key=KEY) -> bytes:
    lines = [f"GET {path}?EIO=4&transport=websocket HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Version: {version}"]
    if key:
        lines.append(f"Sec-WebSocket-Key: {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(payload: bytes | str, opcode=0x1, fin=True, length=None) -> bytes:
    """A masked client frame (``length`` overrides the announced length)."""
    data = payload.encode() if isinstance(payload, str) else payload
    n = len(data) if length is None else length
    head = bytes([(0x80 if fin else 0) | opcode])
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


async def upgraded(fx, first_bytes=b""):
    """A raw connection past the 101 (``first_bytes`` sent along with the request, before the
    answer), and the open packet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", fx.port)
    writer.write(upgrade_request() + first_bytes)
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)).decode()
    assert head.startswith("HTTP/1.1 101"), head
    assert f"sec-websocket-accept: {ACCEPT}".lower() in head.lower()
    opcode, opened = await read_frame(reader)
    assert opcode == 0x1 and opened.startswith(b"0{")
    return reader, writer


async def next_message(reader):
    """The next text frame that is not a ping."""
    while True:
        got = await read_frame(reader)
        if got is None or got[1] != b"2":
            return got


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_frames_sent_with_the_upgrade_request_are_read(fx):
    reader, writer = await upgraded(fx, first_bytes=frame("40"))
    assert (await next_message(reader))[1].startswith(b'40{"sid":')
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_fragmented_message_is_one_packet(fx):
    reader, writer = await upgraded(fx)
    writer.write(frame("4", fin=False) + frame(b"", opcode=0x9) + frame("0", opcode=0x0))
    assert await read_frame(reader) == (0xA, b"")   # the ping between the fragments
    assert (await next_message(reader))[1].startswith(b'40{"sid":')
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_ping_is_answered_with_its_payload(fx):
    reader, writer = await upgraded(fx)
    writer.write(frame(b"hello", opcode=0x9))
    assert await read_frame(reader) == (0xA, b"hello")
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_message_over_max_payload_is_closed_with_1009(fx):
    reader, writer = await upgraded(fx)
    writer.write(frame(b"", length=fx.engine.max_payload + 1)[:14])   # the header says it all
    opcode, payload = await read_frame(reader)
    assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1009
    assert await read_frame(reader) is None
    writer.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_the_clients_close_is_echoed_and_the_connection_ends(fx):
    reader, writer = await upgraded(fx)
    writer.write(frame(struct.pack("!H", 1000), opcode=0x8))
    assert await read_frame(reader) == (0x8, struct.pack("!H", 1000))
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
    writer.write(frame("40", opcode=0x0))
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
