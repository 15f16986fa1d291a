"""Engine.IO v4 packet codec: pure functions, no I/O.

A *frame* is what travels on the wire for one packet: a WebSocket text frame
(``<type><data>`` as UTF-8 bytes) or a binary frame (raw message bytes). Frames
are built once and can be handed to any number of sessions; the HTTP
long-polling transport joins them into a payload with the record separator.
"""

from __future__ import annotations

import base64
import binascii
from typing import NamedTuple

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = range(7)
RECORD_SEPARATOR = "\x1e"


class ProtocolError(ValueError):
    """Raised on any malformed input coming from a peer."""


class Packet(NamedTuple):
    type: int
    data: str | bytes = ""


class Frame(NamedTuple):
    data: bytes
    binary: bool = False


def text_frame(packet_type: int, data: str = "") -> Frame:
    return Frame((str(packet_type) + data).encode("utf-8"), False)


def message_frame(data: str | bytes) -> Frame:
    """A MESSAGE packet: text as ``4<data>``, binary as a raw binary frame."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return Frame(bytes(data), True)
    return text_frame(MESSAGE, data)


def encode_packet(packet: Packet) -> Frame:
    if isinstance(packet.data, (bytes, bytearray)):
        if packet.type != MESSAGE:
            raise ProtocolError("only MESSAGE packets may carry binary data")
        return Frame(bytes(packet.data), True)
    return text_frame(packet.type, packet.data)


def decode_packet(data: str | bytes) -> Packet:
    """Decode one WebSocket frame: ``str`` for text frames, ``bytes`` for binary."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return Packet(MESSAGE, bytes(data))
    if not data or data[0] not in "0123456":
        raise ProtocolError("invalid packet type")
    return Packet(int(data[0]), data[1:])


def encode_payload(frames: list[Frame]) -> bytes:
    """Join frames into an HTTP long-polling body (binary as ``b`` + base64)."""
    records = [b"b" + base64.b64encode(f.data) if f.binary else f.data for f in frames]
    return b"\x1e".join(records)


def decode_payload(body: bytes | str) -> list[Packet]:
    """Split an HTTP long-polling body into packets; raise on any bad record."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("payload is not valid UTF-8") from exc
    if not body:
        raise ProtocolError("empty payload")
    packets = []
    for record in body.split(RECORD_SEPARATOR):
        if record.startswith("b"):
            try:
                packets.append(Packet(MESSAGE, base64.b64decode(record[1:], validate=True)))
            except (binascii.Error, ValueError) as exc:
                raise ProtocolError("invalid base64 record") from exc
        else:
            packets.append(decode_packet(record))
    return packets
