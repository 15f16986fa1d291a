"""Rooms shared by several processes through Redis pub/sub, on the wire of Node's
`@socket.io/redis-adapter` v8 (classic pub/sub) so that Node servers using it and
`@socket.io/redis-emitter` share rooms with us.

Channels (``key`` defaults to ``socket.io``), per namespace ``nsp``:

* ``<key>#<nsp>#`` and ``<key>#<nsp>#<room>#`` (a broadcast to exactly one room): notepack of
  ``[uid, packet, {rooms, except, flags}]`` where packet is ``{type, data, nsp}``; every process
  pattern-subscribes ``<key>#<nsp>#*`` and delivers to its own matching sockets, ignoring what
  carries its own uid.
* ``<key>-request#<nsp>#``: requests, JSON (or notepack), ``{uid, type, opts: {rooms, except},
  rooms | close}``; sent and obeyed here: REMOTE_JOIN (2), REMOTE_LEAVE (3), REMOTE_DISCONNECT (4)
  — socketsJoin, socketsLeave and disconnectSockets. Answered (JSON on ``<key>-response#<nsp>#``)
  for a Node peer that asks, so that it does not wait for its timeout: SOCKETS (0), ALL_ROOMS
  (1), REMOTE_FETCH (5, our sockets with their rooms; no handshake details or data, which hold
  credentials) and SERVER_SIDE_EMIT (6) with an ack (null: we register no server-side events).

An application's ``meta`` for a broadcast travels as extra fields of ``opts`` (Node peers
ignore them); ``on_remote_event(args, opts)``, if set, may rewrite the arguments of an event
from another process before it is encoded for the local sockets (the connection-state-recovery
offset, which each process stamps itself: nexus_chat/offsets.py).

Marks (for an application that numbers its broadcasts per source, as the event log's writers
do): ``mark_of(meta)`` may name a broadcast's (source, value); the publish then also records the
value as the source's latest in the hash ``<key>-marks``, in the same Lua script, so atomically
with it. After each subscription a script reads that hash and publishes it to this process
alone, on ``<key>-marks#``; when it arrives (``on_marks``), every message published before it
was either received here already or published before the subscription and never will be.
That is what a process that has just started knows of each source.

Heads (the gaps of an outage): a broadcast dropped while Redis was unreachable never reaches the
other processes. So after each subscription a process announces its own source's head
(``head_of()``: source, mark value, where the source started) on ``<key>-heads#``, marked like
a broadcast and queued behind everything it published before; every process hands it to
``on_head``, whose awaitable (filling the gap from the application's own store) is awaited
before the next message is read, so that the source's later broadcasts come after it. A
process that subscribes *again* first reads the marks hash and awaits ``on_resubscribed(marks)``
(the same filling for what the others published while it was away) before it reads any
message. ``on_remote_event`` returning None drops a broadcast (already delivered that way).

Local delivery never waits for Redis: a broadcast is delivered here at once and queued for one
publisher task (order kept). While Redis is unreachable, queued messages are dropped (counted),
local delivery goes on, ``up`` is False, and both connections are retried with a growing delay;
on reconnect the subscriptions are made again.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..redis_subscription import keep_subscribed
from . import notepack
from . import socketio_packets as sio
from .rooms import InMemoryAdapter
from .server import encode_frames

log = logging.getLogger("nexus_chat.realtime.redis")

# RequestType of @socket.io/redis-adapter (lib/index.ts)
SOCKETS, ALL_ROOMS, REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT, REMOTE_FETCH, SERVER_SIDE_EMIT = range(7)
QUEUE_LIMIT = 10_000          # messages waiting for Redis; past it new ones are dropped

# KEYS: marks hash, channel; ARGV: source, value, message. The mark and the publish at once.
_PUBLISH_MARKED = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('PUBLISH', KEYS[2], ARGV[3])
"""
# KEYS: marks hash, marks channel; ARGV: uid, cutoff (unix s). Removes the marks of sources whose
# last value ("<value>.<unix time>...") is older than the cutoff (one field per process start
# would pile up otherwise), then sends [uid, [source, value, ...]] to the channel.
_SEND_MARKS = """
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


class RedisAdapter(InMemoryAdapter):
    def __init__(self, url: str, namespaces: Iterable[str], *, key: str = "socket.io") -> None:
        super().__init__()
        self.url = url
        self.key = key
        self.uid = secrets.token_hex(3)      # uid2(6) in Node: six characters
        self.namespaces = tuple(namespaces)
        self.up = False
        self.dropped = 0
        self._queue: asyncio.Queue[tuple[str, bytes, tuple[str, str] | None]] = asyncio.Queue(QUEUE_LIMIT)
        self._tasks: list[asyncio.Task] = []
        self._subscribed = asyncio.Event()
        self.on_remote_event: Callable[[list, dict], list | None] | None = None
        self.mark_of: Callable[[dict[str, Any]], tuple[str, str] | None] | None = None
        self.on_marks: Callable[[dict[str, str]], None] | None = None
        self.head_of: Callable[[], tuple[str, str, str] | None] | None = None
        self.on_head: Callable[[str, str, str], Awaitable[None] | None] | None = None
        self.on_resubscribed: Callable[[dict[str, str]], Awaitable[None]] | None = None
        self.marks_keep_s: int | None = None    # marks older than this are removed (None: kept)

    @property
    def local(self) -> "_ThisProcess":
        """The room operations on this process's sockets only, told to nobody (for a change
        another process has already sent to every process)."""
        return _ThisProcess(self)

    # ---------------------------------------------------------------- channels
    def channel(self, namespace: str, room: str | None = None) -> str:
        base = f"{self.key}#{namespace}#"
        return base if room is None else f"{base}{room}#"

    def request_channel(self, namespace: str) -> str:
        return f"{self.key}-request#{namespace}#"

    def response_channel(self, namespace: str) -> str:
        return f"{self.key}-response#{namespace}#"

    def marks_hash(self) -> str:
        return f"{self.key}-marks"

    def marks_channel(self) -> str:
        return f"{self.key}-marks#"

    def heads_channel(self) -> str:
        return f"{self.key}-heads#"

    # ---------------------------------------------------------------- lifecycle
    async def start(self, wait_s: float = 5.0) -> None:
        """Starts the subscriber and the publisher; waits up to ``wait_s`` for the first
        subscription (the server starts anyway if Redis is down, and keeps retrying)."""
        self._tasks = [asyncio.create_task(self._subscriber()), asyncio.create_task(self._publisher())]
        try:
            await asyncio.wait_for(self._subscribed.wait(), wait_s)
        except asyncio.TimeoutError:
            log.warning("redis adapter: %s not reachable yet; delivering locally only", self.url)

    async def wait_subscribed(self) -> None:
        await self._subscribed.wait()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []

    # ---------------------------------------------------------------- outgoing
    def broadcast(self, namespace: str, frames: list, rooms: Iterable[str] | None = None,
                  except_rooms: Iterable[str] = (), packet: Any = None,
                  meta: dict[str, Any] | None = None) -> int:
        rooms = None if rooms is None else list(rooms)
        except_rooms = list(except_rooms)
        # An empty room list reaches nobody here but would mean "everybody" on the wire.
        if packet is not None and namespace in self.namespaces and rooms != []:
            raw = {"type": packet.type, "data": packet.data, "nsp": namespace}
            opts = {"rooms": rooms or [], "except": except_rooms, "flags": {}, **(meta or {})}
            channel = self.channel(namespace, rooms[0] if rooms and len(rooms) == 1 else None)
            mark = self.mark_of(meta) if meta and self.mark_of is not None else None
            self._publish(channel, notepack.encode([self.uid, raw, opts]), mark)
        return super().broadcast(namespace, frames, rooms, except_rooms)

    def add_sockets(self, namespace: str, rooms: Iterable[str], add: Iterable[str],
                    except_rooms: Iterable[str] = ()) -> None:
        rooms, add, except_rooms = list(rooms), list(add), list(except_rooms)
        self._request(namespace, REMOTE_JOIN, rooms, except_rooms, rooms=add)
        super().add_sockets(namespace, rooms, add, except_rooms)

    def del_sockets(self, namespace: str, rooms: Iterable[str], remove: Iterable[str],
                    except_rooms: Iterable[str] = ()) -> None:
        rooms, remove, except_rooms = list(rooms), list(remove), list(except_rooms)
        self._request(namespace, REMOTE_LEAVE, rooms, except_rooms, rooms=remove)
        super().del_sockets(namespace, rooms, remove, except_rooms)

    def disconnect_sockets(self, namespace: str, rooms: Iterable[str], close: bool = False,
                           except_rooms: Iterable[str] = ()) -> None:
        rooms, except_rooms = list(rooms), list(except_rooms)
        self._request(namespace, REMOTE_DISCONNECT, rooms, except_rooms, close=close)
        super().disconnect_sockets(namespace, rooms, close, except_rooms)

    def _request(self, namespace: str, kind: int, targets: list[str], except_rooms: list[str],
                 **fields: Any) -> None:
        request = {"uid": self.uid, "type": kind, "opts": {"rooms": targets, "except": except_rooms},
                   **fields}
        self._publish(self.request_channel(namespace), orjson.dumps(request))

    def _publish(self, channel: str, message: bytes, mark: tuple[str, str] | None = None) -> None:
        if not self.up:
            self.dropped += 1
            return
        try:
            self._queue.put_nowait((channel, message, mark))
        except asyncio.QueueFull:
            self.dropped += 1

    async def _publisher(self) -> None:
        # A Redis that stops answering must not hold the queue forever.
        client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)
        marked = client.register_script(_PUBLISH_MARKED)
        failing = False
        try:
            while True:
                channel, message, mark = await self._queue.get()
                for attempt in (1, 2):     # a connection left from before a restart fails once
                    try:
                        if mark is None:
                            await client.publish(channel, message)
                        else:
                            await marked(keys=[self.marks_hash(), channel], args=[mark[0], mark[1], message])
                        if failing:     # something was dropped: the others fill the gap
                            self._announce()
                        failing = False
                        break
                    except (RedisError, OSError) as exc:
                        if attempt == 2:
                            self.dropped += 1
                            if not failing:
                                log.warning("redis adapter: publishing failed (%s); message dropped", exc)
                            failing = True
        finally:
            await client.aclose()

    # ---------------------------------------------------------------- incoming
    async def _subscriber(self) -> None:
        await keep_subscribed(
            self.url, patterns=[self.channel(nsp) + "*" for nsp in self.namespaces],
            channels=[self.marks_channel(), self.heads_channel(), *(c for nsp in self.namespaces
                                              for c in (self.request_channel(nsp), self.response_channel(nsp)))],
            on_message=self._on_message, on_subscribed=self._on_subscribed, on_lost=self._went_down)

    async def _on_subscribed(self, again: bool, client: aioredis.Redis) -> None:
        if not self.up:
            log.info("redis adapter: subscribed at %s uid=%s", self.url, self.uid)
        self.up = True
        self._announce()
        if again and self.on_resubscribed is not None:
            # What the others published while this process was away, before any message.
            marks = await client.hgetall(self.marks_hash())
            await self.on_resubscribed({_text(k): _text(v) for k, v in marks.items()})
        # Subscribed: what was published before is in the marks this sends us.
        cutoff = 0 if self.marks_keep_s is None else int(time.time()) - self.marks_keep_s
        await client.register_script(_SEND_MARKS)(keys=[self.marks_hash(), self.marks_channel()],
                                                  args=[self.uid, cutoff])

    def _announce(self) -> None:
        """This process's head: whatever of its own it published or dropped before comes
        before it (the others fill what they missed)."""
        head = self.head_of() if self.head_of is not None else None
        if head is not None:
            source, value, start = head
            self._publish(self.heads_channel(), orjson.dumps([self.uid, source, value, start]), (source, value))

    def _went_down(self, exc: Exception) -> None:
        if self.up:
            log.warning("redis adapter: lost %s (%s); delivering locally only until it is back",
                        self.url, exc)
        self.up = False
        self._subscribed.clear()
        while not self._queue.empty():   # stale by the time Redis is back
            self._queue.get_nowait()
            self.dropped += 1

    def _on_message(self, message: dict) -> Awaitable[None] | None:
        kind = message.get("type")
        channel = message.get("channel", b"")
        channel = channel.decode("utf-8", "replace") if isinstance(channel, bytes) else str(channel)
        data = message.get("data")
        if not isinstance(data, bytes):
            return
        try:
            if kind == "pmessage":
                self._on_broadcast(channel, data)
            elif kind == "message" and channel == self.marks_channel():
                self._on_marks(data)
            elif kind == "message" and channel == self.heads_channel():
                return self._on_head(data)
            elif kind == "message":
                for namespace in self.namespaces:
                    if channel == self.request_channel(namespace):
                        self._on_request(namespace, data)
        except Exception:
            log.exception("redis adapter: message on %s not handled", channel)
        return None

    def _on_head(self, data: bytes) -> Awaitable[None] | None:
        """Another process's head (a new process, or one back from an outage)."""
        try:
            uid, source, value, start = orjson.loads(data)
        except (ValueError, TypeError):
            return None
        if uid == self.uid or self.on_head is None:
            return None
        return self.on_head(str(source), str(value), str(start))

    def _on_marks(self, data: bytes) -> None:
        """The marks this process asked for after subscribing (others' are ignored)."""
        try:
            uid, flat = orjson.loads(data)
        except (ValueError, TypeError):
            return
        if uid != self.uid:
            return
        flat = flat if isinstance(flat, list) else []    # cjson sends an empty hash as {}
        if self.on_marks is not None:
            self.on_marks({str(k): str(v) for k, v in zip(flat[::2], flat[1::2])})
        self._subscribed.set()

    def _on_broadcast(self, channel: str, data: bytes) -> None:
        try:
            decoded = notepack.decode(data)
        except ValueError:
            log.warning("redis adapter: malformed message on %s", channel)
            return
        if not isinstance(decoded, list) or len(decoded) < 3:
            return
        uid, packet, opts = decoded[0], decoded[1], decoded[2]
        if uid == self.uid or not isinstance(packet, dict) or not isinstance(opts, dict):
            return
        namespace = packet.get("nsp")
        namespace = "/" if namespace in (None, notepack.UNDEFINED) else namespace
        if namespace not in self.namespaces or not channel.startswith(self.channel(namespace)):
            return
        flags = opts.get("flags")
        if isinstance(flags, dict) and flags.get("local"):
            return
        args = notepack.for_json(packet.get("data"))
        if packet.get("type") not in (sio.EVENT, sio.BINARY_EVENT) or not isinstance(args, list) \
                or not args or not isinstance(args[0], str):
            return
        if self.on_remote_event is not None:
            args = self.on_remote_event(args, opts)
            if args is None:
                return
        frames = encode_frames(sio.event(namespace, args[0], args[1:]))
        rooms = _rooms(opts.get("rooms"))
        super().broadcast(namespace, frames, rooms or None, _rooms(opts.get("except")))

    def _on_request(self, namespace: str, data: bytes) -> None:
        try:
            request = orjson.loads(data) if data[:1] == b"{" else notepack.decode(data)
        except ValueError:
            return
        if not isinstance(request, dict) or request.get("uid") == self.uid:
            return
        kind = request.get("type")
        if kind in (SOCKETS, ALL_ROOMS, REMOTE_FETCH, SERVER_SIDE_EMIT):
            self._answer(namespace, kind, request)
            return
        opts = request.get("opts")
        if not isinstance(opts, dict):
            return   # the single-socket form (sid) addresses a Node socket, never ours
        rooms = _rooms(opts.get("rooms")) or None     # none named: every socket
        except_rooms = _rooms(opts.get("except"))
        if kind == REMOTE_JOIN:
            super().add_sockets(namespace, rooms, _rooms(request.get("rooms")), except_rooms)
        elif kind == REMOTE_LEAVE:
            super().del_sockets(namespace, rooms, _rooms(request.get("rooms")), except_rooms)
        elif kind == REMOTE_DISCONNECT:
            super().disconnect_sockets(namespace, rooms, bool(request.get("close")), except_rooms)

    def _answer(self, namespace: str, kind: int, request: dict) -> None:
        request_id = request.get("requestId")
        if not isinstance(request_id, str):
            return
        response: dict[str, Any] = {"requestId": request_id}
        if kind == SOCKETS:
            response["sockets"] = sorted(self._targets(namespace, _rooms(request.get("rooms")) or None, ()))
        elif kind == ALL_ROOMS:
            response["rooms"] = sorted(self._rooms.get(namespace, {}))
        elif kind == REMOTE_FETCH:
            opts = request.get("opts") if isinstance(request.get("opts"), dict) else {}
            sids = self._targets(namespace, _rooms(opts.get("rooms")) or None, _rooms(opts.get("except")))
            response["sockets"] = [{"id": sid, "handshake": {}, "rooms": sorted(self.rooms_of(namespace, sid)),
                                    "data": {}} for sid in sorted(sids)]
        else:
            response.update(type=SERVER_SIDE_EMIT, data=None)
        self._publish(self.response_channel(namespace), orjson.dumps(response))


class _ThisProcess:
    def __init__(self, adapter: RedisAdapter) -> None:
        self._adapter = adapter

    def add_sockets(self, namespace: str, rooms: Iterable[str], add: Iterable[str],
                    except_rooms: Iterable[str] = ()) -> None:
        InMemoryAdapter.add_sockets(self._adapter, namespace, rooms, add, except_rooms)

    def del_sockets(self, namespace: str, rooms: Iterable[str], remove: Iterable[str],
                    except_rooms: Iterable[str] = ()) -> None:
        InMemoryAdapter.del_sockets(self._adapter, namespace, rooms, remove, except_rooms)

    def disconnect_sockets(self, namespace: str, rooms: Iterable[str], close: bool = False,
                           except_rooms: Iterable[str] = ()) -> None:
        InMemoryAdapter.disconnect_sockets(self._adapter, namespace, rooms, close, except_rooms)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _rooms(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(room) for room in value if isinstance(room, (str, int, float))]
