"""Rooms shared by several processes through Redis pub/sub, on the wire of Node's
`@socket.io/redis-adapter` v8 (the channels, messages and scripts: redis_wire.py). This module
is the I/O: one publisher task, one subscription, and what the adapter does with what it reads
(deliver to its own sockets, obey or answer requests).

``on_remote_event(args, opts)``, if set, may rewrite the arguments of an event from another
process before it is encoded for the local sockets (the connection-state-recovery offset, which
each process stamps itself: nexus_chat/offsets.py); returning None drops the broadcast (already
delivered another way).

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
message.

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

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..redis_subscription import keep_subscribed
from . import redis_wire as wire
from . import socketio_packets as sio
from .redis_wire import ALL_ROOMS, REMOTE_DISCONNECT, REMOTE_FETCH, REMOTE_JOIN, REMOTE_LEAVE, SOCKETS, room_list
from .rooms import InMemoryAdapter
from .server import encode_frames

log = logging.getLogger("nexus_chat.realtime.redis")

QUEUE_LIMIT = 10_000          # messages waiting for Redis; past it new ones are dropped


class RedisAdapter(InMemoryAdapter):
    def __init__(self, url: str, namespaces: Iterable[str], *, key: str = "socket.io") -> None:
        super().__init__()
        self.url = url
        self.key = key
        self.channels = wire.Channels(key)
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
            channel, message = wire.broadcast_message(self.channels, self.uid, namespace, packet, rooms,
                                                      except_rooms, meta)
            mark = self.mark_of(meta) if meta and self.mark_of is not None else None
            self._publish(channel, message, mark)
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
        self._publish(self.channels.request(namespace),
                      wire.request_message(self.uid, kind, targets, except_rooms, **fields))

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
        marked = client.register_script(wire.PUBLISH_MARKED)
        failing = False
        try:
            while True:
                channel, message, mark = await self._queue.get()
                for attempt in (1, 2):     # a connection left from before a restart fails once
                    try:
                        if mark is None:
                            await client.publish(channel, message)
                        else:
                            await marked(keys=[self.channels.marks_hash(), channel],
                                         args=[mark[0], mark[1], message])
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
            self.url, patterns=self.channels.patterns(self.namespaces),
            channels=self.channels.subscribed(self.namespaces),
            on_message=self._on_message, on_subscribed=self._on_subscribed, on_lost=self._went_down)

    async def _on_subscribed(self, again: bool, client: aioredis.Redis) -> None:
        if not self.up:
            log.info("redis adapter: subscribed at %s uid=%s", self.url, self.uid)
        self.up = True
        self._announce()
        if again and self.on_resubscribed is not None:
            # What the others published while this process was away, before any message.
            marks = await client.hgetall(self.channels.marks_hash())
            await self.on_resubscribed({wire.text(k): wire.text(v) for k, v in marks.items()})
        # Subscribed: what was published before is in the marks this sends us.
        cutoff = 0 if self.marks_keep_s is None else int(time.time()) - self.marks_keep_s
        await client.register_script(wire.SEND_MARKS)(keys=[self.channels.marks_hash(), self.channels.marks()],
                                                      args=[self.uid, cutoff])

    def _announce(self) -> None:
        """This process's head: whatever of its own it published or dropped before comes
        before it (the others fill what they missed)."""
        head = self.head_of() if self.head_of is not None else None
        if head is not None:
            source, value, start = head
            self._publish(self.channels.heads(), wire.head_message(self.uid, source, value, start), (source, value))

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
            elif kind == "message" and channel == self.channels.marks():
                self._on_marks(data)
            elif kind == "message" and channel == self.channels.heads():
                return self._on_head(data)
            elif kind == "message":
                for namespace in self.namespaces:
                    if channel == self.channels.request(namespace):
                        self._on_request(namespace, data)
        except Exception:
            log.exception("redis adapter: message on %s not handled", channel)
        return None

    def _on_head(self, data: bytes) -> Awaitable[None] | None:
        """Another process's head (a new process, or one back from an outage)."""
        head = wire.read_head(data, self.uid)
        if head is None or self.on_head is None:
            return None
        return self.on_head(*head)

    def _on_marks(self, data: bytes) -> None:
        """The marks this process asked for after subscribing (others' are ignored)."""
        marks = wire.read_marks(data, self.uid)
        if marks is None:
            return
        if self.on_marks is not None:
            self.on_marks(marks)
        self._subscribed.set()

    def _on_broadcast(self, channel: str, data: bytes) -> None:
        try:
            event = wire.read_broadcast(self.channels, channel, data, self.uid, self.namespaces)
        except ValueError:
            log.warning("redis adapter: malformed message on %s", channel)
            return
        if event is None:
            return
        args = event.args
        if self.on_remote_event is not None:
            args = self.on_remote_event(args, event.opts)
            if args is None:
                return
        frames = encode_frames(sio.event(event.namespace, args[0], args[1:]))
        super().broadcast(event.namespace, frames, event.rooms or None, event.except_rooms)

    def _on_request(self, namespace: str, data: bytes) -> None:
        request = wire.read_request(data, self.uid)
        if request is None:
            return
        kind = request.get("type")
        if kind in wire.ANSWERED:
            self._answer(namespace, kind, request)
            return
        opts = request.get("opts")
        if not isinstance(opts, dict):
            return   # the single-socket form (sid) addresses a Node socket, never ours
        rooms = room_list(opts.get("rooms")) or None     # none named: every socket
        except_rooms = room_list(opts.get("except"))
        if kind == REMOTE_JOIN:
            super().add_sockets(namespace, rooms, room_list(request.get("rooms")), except_rooms)
        elif kind == REMOTE_LEAVE:
            super().del_sockets(namespace, rooms, room_list(request.get("rooms")), except_rooms)
        elif kind == REMOTE_DISCONNECT:
            super().disconnect_sockets(namespace, rooms, bool(request.get("close")), except_rooms)

    def _answer(self, namespace: str, kind: int, request: dict) -> None:
        """A Node peer's question about this process's sockets (SERVER_SIDE_EMIT: an ack of
        null, we register no server-side events)."""
        request_id = request.get("requestId")
        if not isinstance(request_id, str):
            return
        if kind == SOCKETS:
            answer = {"sockets": sorted(self._targets(namespace, room_list(request.get("rooms")) or None, ()))}
        elif kind == ALL_ROOMS:
            answer = {"rooms": sorted(self._rooms.get(namespace, {}))}
        elif kind == REMOTE_FETCH:
            opts = request.get("opts") if isinstance(request.get("opts"), dict) else {}
            sids = self._targets(namespace, room_list(opts.get("rooms")) or None, room_list(opts.get("except")))
            answer = {"sockets": [wire.fetched_socket(sid, self.rooms_of(namespace, sid)) for sid in sorted(sids)]}
        else:
            answer = {"type": wire.SERVER_SIDE_EMIT, "data": None}
        self._publish(self.channels.response(namespace), wire.response_message(request_id, **answer))


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
