"""The wire of Node's `@socket.io/redis-adapter` v8 (classic pub/sub), so that Node servers using
it and `@socket.io/redis-emitter` share rooms with us, and of this project's marks and heads
next to it: channel names, the messages' codecs and the Lua scripts. Pure functions, no I/O;
the adapter that publishes and reads them is redis_adapter.py.

Channels (``key`` defaults to ``socket.io``), per namespace ``nsp``:

* ``<key>#<nsp>#`` and ``<key>#<nsp>#<room>#`` (a broadcast to exactly one room): notepack of
  ``[uid, packet, {rooms, except, flags}]`` where packet is ``{type, data, nsp}``; every process
  pattern-subscribes ``<key>#<nsp>#*`` and delivers to its own matching sockets, ignoring what
  carries its own uid. An application's ``meta`` travels as extra fields of ``opts`` (Node
  peers ignore them).
* ``<key>-request#<nsp>#``: requests, JSON (or notepack), ``{uid, type, opts: {rooms, except},
  rooms | close}``; sent and obeyed: REMOTE_JOIN (2), REMOTE_LEAVE (3), REMOTE_DISCONNECT (4)
  — socketsJoin, socketsLeave and disconnectSockets. Answered (JSON on ``<key>-response#<nsp>#``)
  for a Node peer that asks, so that it does not wait for its timeout: SOCKETS (0), ALL_ROOMS
  (1), REMOTE_FETCH (5) and SERVER_SIDE_EMIT (6).

This project's own (Node peers neither send nor read them):

* ``<key>-marks``: a hash, each source's latest mark value (``PUBLISH_MARKED`` records it with
  the broadcast, atomically); ``<key>-marks#``: ``[uid, [source, value, ...]]``, the hash sent
  to one process (``SEND_MARKS``, which also removes the marks older than a cutoff).
* ``<key>-heads#``: JSON ``[uid, source, value, start]``, a process's head.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from . import notepack
from . import socketio_packets as sio

# RequestType of @socket.io/redis-adapter (lib/index.ts)
SOCKETS, ALL_ROOMS, REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT, REMOTE_FETCH, SERVER_SIDE_EMIT = range(7)
ANSWERED = (SOCKETS, ALL_ROOMS, REMOTE_FETCH, SERVER_SIDE_EMIT)

# KEYS: marks hash, channel; ARGV: source, value, message. The mark and the publish at once.
PUBLISH_MARKED = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('PUBLISH', KEYS[2], ARGV[3])
"""
# KEYS: marks hash, marks channel; ARGV: uid, cutoff (unix s). Removes the marks of sources whose
# last value ("<value>.<unix time>...") is older than the cutoff (one field per process start
# would pile up otherwise), then sends [uid, [source, value, ...]] to the channel.
SEND_MARKS = """
local cutoff = tonumber(ARGV[2])
local kept = {}
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  local at = tonumber(string.match(flat[i + 1], '^%d+%.(%d+)'))
  if at and at < cutoff then
    redis.call('HDEL', KEYS[1], flat[i])
  else
    table.insert(kept, flat[i])
    table.insert(kept, flat[i + 1])
  end
end
return redis.call('PUBLISH', KEYS[2], cjson.encode({ARGV[1], kept}))
"""


@dataclass(frozen=True)
class Channels:
    """The names under one ``key``."""
    key: str

    def broadcast(self, namespace: str, room: str | None = None) -> str:
        base = f"{self.key}#{namespace}#"
        return base if room is None else f"{base}{room}#"

    def request(self, namespace: str) -> str:
        return f"{self.key}-request#{namespace}#"

    def response(self, namespace: str) -> str:
        return f"{self.key}-response#{namespace}#"

    def marks_hash(self) -> str:
        return f"{self.key}-marks"

    def marks(self) -> str:
        return f"{self.key}-marks#"

    def heads(self) -> str:
        return f"{self.key}-heads#"

    def patterns(self, namespaces: Iterable[str]) -> list[str]:
        return [self.broadcast(nsp) + "*" for nsp in namespaces]

    def subscribed(self, namespaces: Iterable[str]) -> list[str]:
        return [self.marks(), self.heads(), *(c for nsp in namespaces for c in (self.request(nsp), self.response(nsp)))]


# ---------------------------------------------------------------- broadcasts
def broadcast_message(channels: Channels, uid: str, namespace: str, packet: Any, rooms: list[str] | None,
                      except_rooms: list[str], meta: dict[str, Any] | None) -> tuple[str, bytes]:
    """(channel, message) of a broadcast; ``rooms`` None: everybody (never an empty list,
    which would reach nobody here but everybody on the wire)."""
    raw = {"type": packet.type, "data": packet.data, "nsp": namespace}
    opts = {"rooms": rooms or [], "except": except_rooms, "flags": {}, **(meta or {})}
    channel = channels.broadcast(namespace, rooms[0] if rooms and len(rooms) == 1 else None)
    return channel, notepack.encode([uid, raw, opts])


@dataclass(frozen=True)
class Broadcast:
    """An event another process broadcast: to ``rooms`` (empty: everybody) but ``except_rooms``."""
    namespace: str
    args: list
    rooms: list[str]
    except_rooms: list[str]
    opts: dict[str, Any]


def read_broadcast(channels: Channels, channel: str, data: bytes, uid: str,
                   namespaces: tuple[str, ...]) -> Broadcast | None:
    """The event in a message on a broadcast channel, or None for anything this process does
    not deliver: its own, another namespace's, a local one, not an event. ValueError: not
    notepack."""
    decoded = notepack.decode(data)
    if not isinstance(decoded, list) or len(decoded) < 3:
        return None
    sender, packet, opts = decoded[0], decoded[1], decoded[2]
    if sender == uid or not isinstance(packet, dict) or not isinstance(opts, dict):
        return None
    namespace = packet.get("nsp")
    namespace = "/" if namespace in (None, notepack.UNDEFINED) else namespace
    if namespace not in namespaces or not channel.startswith(channels.broadcast(namespace)):
        return None
    flags = opts.get("flags")
    if isinstance(flags, dict) and flags.get("local"):
        return None
    args = notepack.for_json(packet.get("data"))
    if packet.get("type") not in (sio.EVENT, sio.BINARY_EVENT) or not isinstance(args, list) \
            or not args or not isinstance(args[0], str):
        return None
    return Broadcast(namespace, args, room_list(opts.get("rooms")), room_list(opts.get("except")), opts)


# ---------------------------------------------------------------- requests and responses
def request_message(uid: str, kind: int, targets: list[str], except_rooms: list[str], **fields: Any) -> bytes:
    return orjson.dumps({"uid": uid, "type": kind, "opts": {"rooms": targets, "except": except_rooms}, **fields})


def read_request(data: bytes, uid: str) -> dict | None:
    """Another process's request (None: malformed, or this process's own)."""
    try:
        request = orjson.loads(data) if data[:1] == b"{" else notepack.decode(data)
    except ValueError:
        return None
    if not isinstance(request, dict) or request.get("uid") == uid:
        return None
    return request


def response_message(request_id: str, **fields: Any) -> bytes:
    return orjson.dumps({"requestId": request_id, **fields})


def fetched_socket(sid: str, rooms: Iterable[str]) -> dict[str, Any]:
    """A socket in a REMOTE_FETCH answer: no handshake details or data, which hold credentials."""
    return {"id": sid, "handshake": {}, "rooms": sorted(rooms), "data": {}}


# ---------------------------------------------------------------- marks and heads
def head_message(uid: str, source: str, value: str, start: str) -> bytes:
    return orjson.dumps([uid, source, value, start])


def read_head(data: bytes, uid: str) -> tuple[str, str, str] | None:
    """Another process's head: (source, value, start)."""
    try:
        sender, source, value, start = orjson.loads(data)
    except (ValueError, TypeError):
        return None
    return None if sender == uid else (str(source), str(value), str(start))


def read_marks(data: bytes, uid: str) -> dict[str, str] | None:
    """The marks sent to this process (None: sent to another)."""
    try:
        sender, flat = orjson.loads(data)
    except (ValueError, TypeError):
        return None
    if sender != uid:
        return None
    flat = flat if isinstance(flat, list) else []    # cjson sends an empty hash as {}
    return {str(k): str(v) for k, v in zip(flat[::2], flat[1::2])}


def text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def room_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(room) for room in value if isinstance(room, (str, int, float))]
