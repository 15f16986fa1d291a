"""Rate limits counted in Redis (docs/scaling.md#rate-limits), so that N processes together
allow what one would: a fixed window per (limit, key) is one Redis key, counted by a Lua
script (INCR, and PEXPIRE on the first hit of a window), so the count is atomic across
processes.

If Redis does not answer, the limits are counted in this process's memory instead (as with
one process: with N processes up to N times the limit) and Redis is tried again after
``RETRY_S``. The Engine.IO handshake is admitted synchronously: it is counted here at once
and in Redis in the background, and a key over its shared limit refuses handshakes from then
on until its window ends.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..ratelimit import Limit, RateLimiter
from .bus import ClusterBus

log = logging.getLogger("nexus_chat.cluster")

RETRY_S = 5.0
TIMEOUT_S = 0.5

# KEYS: the window; ARGV: window ms. Returns {count, ms left}.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); left = tonumber(ARGV[1]) end
return {count, left}
"""


def _seconds(ms: int) -> int:
    return max(1, int(ms / 1000 + 0.999))


class SharedRateLimiter(RateLimiter):
    def __init__(self, bus: ClusterBus, enabled: bool = True) -> None:
        super().__init__(enabled)
        self.bus = bus
        self._redis = aioredis.Redis.from_url(bus.url, socket_connect_timeout=TIMEOUT_S,
                                              socket_timeout=TIMEOUT_S)
        self._hit = self._redis.register_script(_HIT)
        self._down_until = 0.0
        self._blocked: dict[tuple[str, str], float] = {}   # (limit, key) -> monotonic end
        self._background: set[asyncio.Task] = set()

    def _key(self, limit: Limit, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]
        return self.bus.key("rate", limit.name, digest)

    def _usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if self._usable():
            log.warning("rate limits: Redis unreachable (%s); counting in this process for %ss", exc, RETRY_S)
        self._down_until = time.monotonic() + RETRY_S

    async def count(self, limit: Limit, key: str) -> int:
        if not self.enabled:
            return 0
        if not self._usable():
            return self.hit(limit, key)
        try:
            count, left = await self._hit(keys=[self._key(limit, key)], args=[limit.window_s * 1000])
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return self.hit(limit, key)
        if int(count) > limit.count:
            self._blocked[(limit.name, key)] = time.monotonic() + int(left) / 1000
            return _seconds(int(left))
        return 0

    async def wait_for(self, limit: Limit, key: str) -> int:
        if not self.enabled:
            return 0
        if not self._usable():
            return self.exhausted(limit, key)
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(self._key(limit, key))
            pipe.pttl(self._key(limit, key))
            count, left = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return self.exhausted(limit, key)
        if count is None or int(count) < limit.count:
            return 0
        return _seconds(max(int(left), 0))

    def hit_now(self, limit: Limit, key: str) -> int:
        """Synchronous (the handshake): local count now, shared count in the background."""
        if not self.enabled:
            return 0
        blocked = self._blocked.get((limit.name, key))
        now = time.monotonic()
        if blocked is not None:
            if blocked > now:
                return _seconds(int((blocked - now) * 1000))
            del self._blocked[(limit.name, key)]
        if len(self._blocked) > 100_000:
            self._blocked.clear()
        if self._usable() and len(self._background) < 1000:
            task = asyncio.get_running_loop().create_task(self.count(limit, key))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return self.hit(limit, key)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self._redis.aclose()
