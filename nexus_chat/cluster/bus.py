"""One Redis connection for the cluster state of a process, its heartbeat, and a pub/sub
channel of small JSON notices between the processes (``<key>:nexus:bus``).

The heartbeat is a key ``<key>:nexus:proc:<uid>`` with a time to live of
``redis.process_ttl_s``, renewed three times per TTL, and the uid's entry in
``<key>:nexus:procs``. A process that stops renewing it (killed, frozen, cut off) is taken
for dead once the key expires; every live process then runs the ``on_tick`` hooks, which
clean up after it (cluster/presence_ledger.py). If a beat finds its own key gone (Redis
restarted, or this process was frozen longer than the TTL and was taken for dead), the
``on_rejoin`` hooks register this process's state again. After the subscription was lost
(notices missed), the ``on_resubscribed`` hooks run.

``publish`` waits (at most a second) until Redis has passed a notice on; while Redis is
unreachable notices are dropped (counted in ``dropped``) and ``up`` is False.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("nexus_chat.cluster")

RETRY_S = (0.1, 0.25, 0.5, 1.0, 2.0)

# KEYS: heartbeat key, process set; ARGV: ttl ms, uid. Returns 1 if the key was still there.
_BEAT = """
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return existed
"""

Hook = Callable[[], Awaitable[None]]


class ClusterBus:
    def __init__(self, url: str, key: str, uid: str, process_ttl_s: float) -> None:
        self.url = url
        self.prefix = f"{key}:nexus"
        self.uid = uid
        self.process_ttl_ms = int(process_ttl_s * 1000)
        self.redis = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self.channel = f"{self.prefix}:bus"
        self.handlers: dict[str, Callable[[dict], None]] = {}
        self.on_tick: list[Hook] = []
        self.on_rejoin: list[Hook] = []
        self.on_resubscribed: list[Hook] = []
        self.up = False
        self.dropped = 0
        self._beat = self.redis.register_script(_BEAT)
        self._tasks: list[asyncio.Task] = []
        self._subscribed = asyncio.Event()
        self._beaten = False

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # ---------------------------------------------------------------- lifecycle
    async def start(self, wait_s: float = 5.0) -> None:
        """Beats once (so that this process counts as alive before it serves anyone), then
        runs the subscriber and the heartbeat."""
        try:
            await self.beat()
        except (RedisError, OSError) as exc:
            log.warning("cluster: %s not reachable yet (%s); shared state waits for it", self.url, exc)
        self._tasks = [asyncio.create_task(self._subscriber()), asyncio.create_task(self._heartbeat())]
        try:
            await asyncio.wait_for(self._subscribed.wait(), wait_s)
        except asyncio.TimeoutError:
            pass

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
                log.warning("cluster: this process's heartbeat had lapsed; registering again uid=%s", self.uid)
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
    async def publish(self, kind: str, timeout_s: float = 1.0, **fields: Any) -> bool:
        """Tells every other process and waits until Redis has passed the notice on (a
        change must reach the other processes before its request is answered); False if
        Redis did not take it (the notice is dropped, never raised)."""
        if not self.up:   # known to be unreachable: no wait
            self.dropped += 1
            return False
        message = orjson.dumps({"from": self.uid, "kind": kind, **fields})
        try:
            await asyncio.wait_for(self.redis.publish(self.channel, message), timeout_s)
            return True
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            self.dropped += 1
            log.warning("cluster: a %s notice was dropped (%s)", kind, exc or "timeout")
            return False

    async def _subscriber(self) -> None:
        attempt = 0
        lost = False
        while True:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2, health_check_interval=10)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self.up = True
                attempt = 0
                self._subscribed.set()
                if lost:
                    lost = False
                    await self._run(self.on_resubscribed)
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None and message.get("type") == "message":
                        self._on_message(message.get("data"))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.up:
                    log.warning("cluster: lost %s (%s)", self.url, exc)
                self.up = False
                lost = True
                self._subscribed.clear()
            finally:
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:
                    pass
            await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
            attempt += 1

    def _on_message(self, data: Any) -> None:
        try:
            notice = orjson.loads(data)
        except (orjson.JSONDecodeError, TypeError):
            return
        if not isinstance(notice, dict) or notice.get("from") == self.uid:
            return
        handler = self.handlers.get(notice.get("kind"))
        if handler is None:
            return
        try:
            handler(notice)
        except Exception:
            log.exception("cluster: notice %s not handled", notice.get("kind"))
