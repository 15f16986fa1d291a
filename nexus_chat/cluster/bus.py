"""One Redis connection for the cluster state of a process, its heartbeat, and a pub/sub
channel of small JSON notices between the processes (``<key>:nexus:bus``).

The heartbeat is a key ``<key>:nexus:proc:<uid>`` with a time to live of
``redis.process_ttl_s``, renewed three times per TTL, and the uid's entry in
``<key>:nexus:procs``. A process that stops renewing it (killed, frozen, cut off) is taken
for dead once the key expires; every live process then runs the ``on_tick`` hooks, which
clean up after it (cluster/presence_ledger.py). If a beat finds its own key gone (Redis
restarted, or this process was frozen longer than the TTL and was taken for dead), the
``on_rejoin`` hooks register this process's state again. After the subscription was lost
or the heartbeat lapsed (notices may have been missed), the ``on_missed`` hooks run.

``publish`` returns once every other live process has *applied* the notice: each notice
carries an id, the processes whose heartbeat is alive when Redis passes it on are the ones
waited for, and each of them publishes an acknowledgement on the publisher's channel
``<key>:nexus:ack:<uid>`` after its handler ran. The wait is bounded (``redis.ack_timeout_ms``): a
process that has not acknowledged by then is taken for dead, its heartbeat key is deleted
(*fenced*), so that it is reaped and no later notice waits for it; if it was alive after all,
its next beat finds the key gone and it runs the ``on_missed`` hooks and replays the notices
kept in ``<key>:nexus:recent`` (those published with ``keep_s``: revocations, deleted
accounts), as it does after a lost subscription. While Redis is unreachable notices are
dropped (counted in ``dropped``) and ``up`` is False.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..redis_subscription import keep_subscribed

log = logging.getLogger("nexus_chat.cluster")

# How long a publisher waits for Redis to take a notice and every live process to apply it, by
# default (redis.ack_timeout_ms). A healthy process acknowledges within milliseconds (one
# handler on its event loop, two Redis hops); two seconds leaves room for a busy box before a
# late process is fenced (its users flap offline and back). Only a process that really is dead
# costs this wait, and once: fencing it removes it from the processes waited for.
ACK_TIMEOUT_S = 2.0

# KEYS: heartbeat key, process set; ARGV: ttl ms, uid. Returns 1 if the key was still there.
_BEAT = """
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return existed
"""

# ARGV: prefix, uid, channel, notice, keep until (epoch ms, 0: not kept), now (epoch ms).
# Publishes the notice and returns the other processes whose heartbeat is alive, in one step:
# a process that beats later subscribed before its first beat (ClusterBus.start) and so
# receives the notice anyway.
_PUBLISH = """
local prefix = ARGV[1]
local peers = {}
for _, p in ipairs(redis.call('SMEMBERS', prefix .. ':procs')) do
  if p ~= ARGV[2] and redis.call('EXISTS', prefix .. ':proc:' .. p) == 1 then
    table.insert(peers, p)
  end
end
if ARGV[5] ~= '0' then
  redis.call('ZREMRANGEBYSCORE', prefix .. ':recent', '-inf', ARGV[6])
  redis.call('ZADD', prefix .. ':recent', ARGV[5], ARGV[4])
  redis.call('PEXPIREAT', prefix .. ':recent', ARGV[5])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return peers
"""

Hook = Callable[[], Awaitable[None]]


class _Waiter:
    """The acknowledgements one published notice is waiting for."""

    def __init__(self) -> None:
        self.done = asyncio.get_running_loop().create_future()
        self.acked: set[str] = set()
        self.peers: set[str] | None = None    # known once Redis answered the publish

    def ack(self, uid: str) -> None:
        self.acked.add(uid)
        self._check()

    def expect(self, peers: set[str]) -> None:
        self.peers = peers
        self._check()

    def missing(self) -> set[str]:
        return set() if self.peers is None else self.peers - self.acked

    def _check(self) -> None:
        if self.peers is not None and not self.missing() and not self.done.done():
            self.done.set_result(None)


class ClusterBus:
    def __init__(self, url: str, key: str, uid: str, process_ttl_s: float,
                 ack_timeout_s: float = ACK_TIMEOUT_S) -> None:
        self.url = url
        self.prefix = f"{key}:nexus"
        self.uid = uid
        self.process_ttl_ms = int(process_ttl_s * 1000)
        self.ack_timeout_s = ack_timeout_s
        self.redis = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self.channel = f"{self.prefix}:bus"
        self.ack_channel = self.ack_channel_of(uid)
        self.handlers: dict[str, Callable[[dict], None]] = {}
        self.on_tick: list[Hook] = []
        self.on_rejoin: list[Hook] = []
        self.on_missed: list[Hook] = []     # notices may have been missed: caches start over
        self.up = False
        self.dropped = 0
        self.fenced = 0      # processes taken for dead because they did not acknowledge
        self._beat = self.redis.register_script(_BEAT)
        self._publish = self.redis.register_script(_PUBLISH)
        self._sent = 0
        self._waiting: dict[int, _Waiter] = {}
        self._acking: set[asyncio.Task] = set()     # acknowledgements and replays under way
        self._tasks: list[asyncio.Task] = []
        self._subscribed = asyncio.Event()
        self._beaten = False

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def ack_channel_of(self, uid: str) -> str:
        return self.key("ack", uid)

    # ---------------------------------------------------------------- lifecycle
    async def start(self, wait_s: float = 5.0) -> None:
        """Subscribes, then beats once (so that this process counts as alive before it
        serves anyone, and only once it hears every notice a publisher waits for it to
        apply), then runs the heartbeat."""
        self._tasks = [asyncio.create_task(self._subscriber())]
        try:
            await asyncio.wait_for(self._subscribed.wait(), wait_s)
        except asyncio.TimeoutError:
            pass
        try:
            await self.beat()
        except (RedisError, OSError) as exc:
            log.warning("cluster: %s not reachable yet (%s); shared state waits for it", self.url, exc)
        self._tasks.append(asyncio.create_task(self._heartbeat()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []
        await self.redis.aclose()

    async def beat(self) -> bool:
        """Renews the heartbeat; True if it had lapsed (after a first beat)."""
        existed = await self._beat(keys=[self.key("proc", self.uid), self.key("procs")],
                                   args=[self.process_ttl_ms, self.uid])
        lapsed, self._beaten = self._beaten and not existed, True
        return lapsed

    async def _heartbeat(self) -> None:
        interval = self.process_ttl_ms / 3000
        failing = False
        while True:
            await asyncio.sleep(interval)
            try:
                lapsed = await self.beat()
                failing = False
            except (RedisError, OSError) as exc:
                if not failing:
                    log.warning("cluster: heartbeat failed (%s)", exc)
                failing = True
                continue
            if lapsed:
                # Expired or fenced by a publisher that waited for it in vain: notices may
                # have been missed.
                log.warning("cluster: this process's heartbeat had lapsed; registering again uid=%s", self.uid)
                await self._missed()
                await self._run(self.on_rejoin)
            await self._run(self.on_tick)

    @staticmethod
    async def _run(hooks: list[Hook]) -> None:
        for hook in hooks:
            try:
                await hook()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("cluster: %r failed (%s)", hook, exc)
            except Exception:
                log.exception("cluster: %r failed", hook)

    # ---------------------------------------------------------------- notices
    async def publish(self, kind: str, timeout_s: float | None = None, keep_s: float = 0,
                      **fields: Any) -> bool:
        """Tells every other process and returns once each live one has applied the notice
        (a change must hold everywhere before its request is answered), or after
        ``timeout_s`` (the bus's ``ack_timeout_s``), having fenced those that did not. ``keep_s``: the notice is also kept
        that long for a process that missed it. False if Redis did not take it (the notice
        is dropped, never raised)."""
        if not self.up:   # known to be unreachable: no wait
            self.dropped += 1
            return False
        timeout_s = self.ack_timeout_s if timeout_s is None else timeout_s
        self._sent += 1
        notice_id = self._sent
        message = orjson.dumps({"from": self.uid, "kind": kind, "id": notice_id, **fields})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        waiter = self._waiting[notice_id] = _Waiter()
        try:
            now_ms = int(time.time() * 1000)
            keep_until = now_ms + int(keep_s * 1000) if keep_s > 0 else 0
            try:
                peers = await asyncio.wait_for(
                    self._publish(args=[self.prefix, self.uid, self.channel, message, keep_until, now_ms]),
                    timeout_s)
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                self.dropped += 1
                log.warning("cluster: a %s notice was dropped (%s)", kind, exc or "timeout")
                return False
            waiter.expect({_text(p) for p in peers})
            try:
                await asyncio.wait_for(asyncio.shield(waiter.done), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                await self._fence(kind, waiter.missing(), timeout_s)
            return True
        finally:
            del self._waiting[notice_id]

    async def _fence(self, kind: str, silent: set[str], waited_s: float) -> None:
        """Takes the processes that did not apply a notice in time for dead."""
        if not silent:
            return
        self.fenced += len(silent)
        log.warning("cluster: %s did not apply a %s notice within %.1f s; taken for dead",
                    ", ".join(sorted(silent)), kind, waited_s)
        try:
            await asyncio.wait_for(self.redis.delete(*(self.key("proc", p) for p in silent)), 1.0)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            log.warning("cluster: fencing failed (%s)", exc or "timeout")

    async def replay_kept(self) -> None:
        """Applies the notices still kept (``keep_s``): after notices may have been missed,
        and once at start, when the handlers are in place (a process that starts after a
        deletion refuses the account's tokens too)."""
        try:
            kept = await self.redis.zrangebyscore(self.key("recent"), int(time.time() * 1000), "+inf")
        except (RedisError, OSError) as exc:
            log.warning("cluster: kept notices not read (%s)", exc)
            return
        for data in kept:
            self._on_notice(data, acknowledge=False)

    async def _missed(self) -> None:
        """Notices may have been missed: replays those still kept, then the hooks."""
        await self.replay_kept()
        await self._run(self.on_missed)

    async def _subscriber(self) -> None:
        await keep_subscribed(self.url, channels=(self.channel, self.ack_channel),
                              on_message=self._on_message, on_subscribed=self._on_subscribed,
                              on_lost=self._on_lost)

    async def _on_subscribed(self, again: bool, client: aioredis.Redis) -> None:
        self.up = True
        self._subscribed.set()
        if again:   # beside the subscriber, which goes on reading (and acknowledging) notices
            task = asyncio.get_running_loop().create_task(self._missed())
            self._acking.add(task)
            task.add_done_callback(self._acking.discard)

    def _on_lost(self, exc: Exception) -> None:
        if self.up:
            log.warning("cluster: lost %s (%s)", self.url, exc)
        self.up = False
        self._subscribed.clear()

    def _on_message(self, message: dict) -> None:
        if message.get("type") != "message":
            return
        channel = _text(message.get("channel", b""))
        if channel == self.ack_channel:
            self._on_ack(message.get("data"))
        else:
            self._on_notice(message.get("data"))

    def _on_notice(self, data: Any, acknowledge: bool = True) -> None:
        try:
            notice = orjson.loads(data)
        except (orjson.JSONDecodeError, TypeError):
            return
        if not isinstance(notice, dict) or notice.get("from") == self.uid:
            return
        handler = self.handlers.get(notice.get("kind"))
        if handler is not None:
            try:
                handler(notice)
            except Exception:
                log.exception("cluster: notice %s not handled", notice.get("kind"))
        # Acknowledged once handled (or known to need nothing here): the publisher may answer.
        sender, notice_id = notice.get("from"), notice.get("id")
        if acknowledge and isinstance(sender, str) and isinstance(notice_id, int):
            task = asyncio.get_running_loop().create_task(self._acknowledge(sender, notice_id))
            self._acking.add(task)
            task.add_done_callback(self._acking.discard)

    async def _acknowledge(self, sender: str, notice_id: int) -> None:
        try:
            await self.redis.publish(self.ack_channel_of(sender),
                                     orjson.dumps({"from": self.uid, "id": notice_id}))
        except (RedisError, OSError) as exc:   # the publisher fences this process: it replays
            log.warning("cluster: an acknowledgement was not sent (%s)", exc)

    def _on_ack(self, data: Any) -> None:
        try:
            ack = orjson.loads(data)
        except (orjson.JSONDecodeError, TypeError):
            return
        if not isinstance(ack, dict) or not isinstance(ack.get("from"), str):
            return
        notice_id = ack.get("id")
        waiter = self._waiting.get(notice_id) if isinstance(notice_id, int) else None
        if waiter is not None:
            waiter.ack(ack["from"])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
