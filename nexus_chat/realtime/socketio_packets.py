"""Socket.IO v5 packet codec: pure functions, no I/O.

Wire format: ``<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]``; the
namespace is omitted when it is ``/``. Binary values are replaced by
``{"_placeholder":true,"num":N}`` and travel as separate attachments.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from .engineio_packets import ProtocolError

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)

# Event names the client libraries reserve for themselves.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
MAX_ACK_ID_DIGITS = 15
MAX_ATTACHMENTS = 1000
# Deepest nesting of arrays/objects a decoded payload may have. Chat payloads are a few
# levels deep; without a limit, ~1,000 levels (2 KB on the wire) overflow the Python stack
# in every recursive walk over the data (placeholders, validation, encoding).
MAX_DEPTH = 32
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS

__all__ = ["ProtocolError", "Packet", "encode", "decode", "Decoder", "deconstruct", "reconstruct"]


class Packet(NamedTuple):
    type: int
    namespace: str = "/"
    data: Any = None
    id: int | None = None
    attachments: int = 0  # only meaningful between decode() and reconstruct()


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=_JSON_OPTIONS).decode("utf-8")


# ---------------------------------------------------------------- binary helpers

def has_binary(value: Any) -> bool:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return True
    if isinstance(value, (list, tuple)):
        return any(has_binary(v) for v in value)
    if isinstance(value, dict):
        return any(has_binary(v) for v in value.values())
    return False


def deconstruct(data: Any) -> tuple[Any, list[bytes]]:
    """Replace every binary value by a placeholder; return (data, attachments)."""
    attachments: list[bytes] = []

    def walk(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray, memoryview)):
            attachments.append(bytes(value))
            return {"_placeholder": True, "num": len(attachments) - 1}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return walk(data), attachments


def reconstruct(data: Any, attachments: list[bytes]) -> Any:
    """Put attachments back in place of their placeholders."""

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            if value.get("_placeholder") is True:
                num = value.get("num")
                if type(num) is not int or not 0 <= num < len(attachments):
                    raise ProtocolError("invalid attachment placeholder")
                return attachments[num]
            return {k: walk(v) for k, v in value.items()}
        return value

    return walk(data)


# ---------------------------------------------------------------- encoding

def encode(packet: Packet) -> list[str | bytes]:
    """Encode a packet: the text part first, then any binary attachments."""
    ptype, data = packet.type, packet.data
    attachments: list[bytes] = []
    text = None
    if ptype in (EVENT, ACK, BINARY_EVENT, BINARY_ACK) and data is not None:
        # JSON has no bytes (orjson refuses them): a payload it encodes holds no binary, so the
        # walk of has_binary (a third of an event's encoding) is only paid when it fails.
        try:
            text = dumps(data)
        except TypeError:
            if not has_binary(data):
                raise
            data, attachments = deconstruct(data)
            text = dumps(data)
    if attachments:
        ptype = BINARY_EVENT if ptype in (EVENT, BINARY_EVENT) else BINARY_ACK
    elif ptype == BINARY_EVENT:
        ptype = EVENT
    elif ptype == BINARY_ACK:
        ptype = ACK
    parts = [str(ptype)]
    if ptype in (BINARY_EVENT, BINARY_ACK):
        parts.append(f"{len(attachments)}-")
    if packet.namespace and packet.namespace != "/":
        parts.append(packet.namespace + ",")
    if packet.id is not None:
        parts.append(str(packet.id))
    if data is not None:
        parts.append(text if text is not None else dumps(data))
    return ["".join(parts), *attachments]


def event(namespace: str, name: str, args: list | tuple, ack_id: int | None = None) -> Packet:
    return Packet(EVENT, namespace, [name, *args], ack_id)


# ---------------------------------------------------------------- decoding

def decode(text: str) -> Packet:
    """Decode the text part of a packet. Binary packets come back with
    ``attachments`` > 0 and placeholders still in ``data``."""
    if not isinstance(text, str) or not text:
        raise ProtocolError("empty packet")
    if text[0] not in "0123456":
        raise ProtocolError("unknown packet type")
    ptype = int(text[0])
    i = 1
    attachments = 0
    if ptype in (BINARY_EVENT, BINARY_ACK):
        dash = text.find("-", i)
        count = text[i:dash]
        if dash < 0 or not count.isdigit() or not count.isascii():
            raise ProtocolError("illegal attachments")
        attachments = int(count)
        if attachments > MAX_ATTACHMENTS:
            raise ProtocolError("too many attachments")
        i = dash + 1
    namespace = "/"
    if text.startswith("/", i):
        comma = text.find(",", i)
        end = len(text) if comma < 0 else comma
        namespace = text[i:end]
        i = end + 1
    ack_id = None
    j = i
    while j < len(text) and text[j] in "0123456789":
        j += 1
    if j > i:
        if j - i > MAX_ACK_ID_DIGITS:
            raise ProtocolError("invalid ack id")
        ack_id = int(text[i:j])
        i = j
    data = None
    if i < len(text):
        try:
            data = orjson.loads(text[i:])
        except orjson.JSONDecodeError as exc:
            raise ProtocolError("invalid JSON payload") from exc
        # Each level opens with a bracket: with no more brackets than that, no walk is needed.
        if text.count("[", i) + text.count("{", i) > MAX_DEPTH and nesting_depth(data) > MAX_DEPTH:
            raise ProtocolError(f"payload nested deeper than {MAX_DEPTH} levels")
    _validate(ptype, data, ack_id)
    return Packet(ptype, namespace, data, ack_id, attachments)


def nesting_depth(value: Any) -> int:
    """How deeply arrays/objects nest in decoded JSON (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _validate(ptype: int, data: Any, ack_id: int | None) -> None:
    if ptype == CONNECT:
        ok = data is None or isinstance(data, dict)
    elif ptype == DISCONNECT:
        ok = data is None
    elif ptype in (EVENT, BINARY_EVENT):
        ok = (
            isinstance(data, list)
            and len(data) > 0
            and isinstance(data[0], str)
            and data[0] not in RESERVED_EVENTS
        )
    elif ptype in (ACK, BINARY_ACK):
        ok = isinstance(data, list) and ack_id is not None
    else:  # CONNECT_ERROR
        ok = isinstance(data, (str, dict))
    if not ok:
        raise ProtocolError(f"invalid payload for packet type {ptype}")


class Decoder:
    """Turns a stream of Engine.IO messages into complete Socket.IO packets,
    collecting the binary attachments that follow a binary packet.

    ``max_pending_bytes`` bounds the attachment bytes held for one incomplete packet (a
    client announcing 1,000 attachments and never sending the last would otherwise keep
    up to 1,000 x max_payload in memory)."""

    def __init__(self, max_pending_bytes: int | None = None) -> None:
        self.max_pending_bytes = max_pending_bytes
        self._pending: Packet | None = None
        self._buffers: list[bytes] = []
        self._pending_bytes = 0

    @property
    def waiting(self) -> bool:
        return self._pending is not None

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def feed(self, message: str | bytes) -> Packet | None:
        """Return a complete packet, or None while attachments are missing."""
        if isinstance(message, (bytes, bytearray, memoryview)):
            if self._pending is None:
                raise ProtocolError("unexpected binary attachment")
            self._pending_bytes += len(message)
            if self.max_pending_bytes is not None and self._pending_bytes > self.max_pending_bytes:
                self._reset()
                raise ProtocolError(f"binary attachments exceed {self.max_pending_bytes} bytes")
            self._buffers.append(bytes(message))
            if len(self._buffers) < self._pending.attachments:
                return None
            return self._complete()
        if self._pending is not None:
            raise ProtocolError("got text while waiting for binary attachments")
        packet = decode(message)
        if packet.attachments == 0:
            if packet.type in (BINARY_EVENT, BINARY_ACK):
                return self._finish(packet, [])
            return packet
        self._reset()
        self._pending = packet
        return None

    def _complete(self) -> Packet:
        packet, buffers = self._pending, self._buffers
        self._reset()
        return self._finish(packet, buffers)

    def _reset(self) -> None:
        self._pending, self._buffers, self._pending_bytes = None, [], 0

    @staticmethod
    def _finish(packet: Packet, buffers: list[bytes]) -> Packet:
        return packet._replace(data=reconstruct(packet.data, buffers), attachments=0)
