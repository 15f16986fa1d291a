"""Who runs the background jobs (the sweeper and the mail outbox) when several processes share a
database: one at a time, chosen by a lease in Redis, with failover.

A lease is one Redis key holding the holder's token, set with ``SET key token NX PX ttl``. The
holder renews it every third of the ttl (``PEXPIRE``, only while the key still holds its own
token) and gives it back on a clean stop (``DEL``, only while it holds its own token: both
compare-and-act steps are Lua scripts, atomic in Redis). A process that dies stops renewing, so
its lease lapses within one ttl and another process takes it at its next try.

A process believes it holds the lease only until ``ttl - margin`` after the last acquire or
renewal that Redis confirmed (its own clock, started before the command was sent): when Redis
cannot be reached the holder stops running the jobs before the key can have expired and been
taken by another process. ``AlwaysHeld`` is the one-process case (``realtime.adapter = memory``).
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("nexus_chat.lease")

# KEYS[1] the lease, ARGV[1] our token, ARGV[2] ttl in ms
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease(Protocol):
    @property
    def held(self) -> bool: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class AlwaysHeld:
    """One process: it runs the background jobs."""

    held = True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def lease_key(prefix: str) -> str:
    """The Redis key of the background-jobs lease of the deployment whose keys start ``prefix``."""
    return f"{prefix}#nexus#lease#background"


def make_token() -> str:
    """Names the holder for an operator reading the key: host, pid, and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"


class RedisLease:
    def __init__(self, url: str, key: str, ttl_s: float, *, token: str | None = None) -> None:
        self.url = url
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = token or make_token()
        self.renew_s = ttl_s / 3
        # Believe we hold it until this much before Redis forgets it (clock drift, a slow reply).
        self.margin_s = min(1.0, ttl_s / 5)
        self._valid_until = 0.0            # time.monotonic() deadline of our belief
        self._task: asyncio.Task | None = None
        self._client: aioredis.Redis | None = None
        self._failing = False

    @property
    def held(self) -> bool:
        return time.monotonic() < self._valid_until

    async def start(self) -> None:
        # Short timeouts: a Redis that does not answer within a renewal period is a lost lease.
        timeout = max(0.2, self.renew_s)
        self._client = aioredis.Redis.from_url(self.url, socket_connect_timeout=timeout,
                                               socket_timeout=timeout)
        await self.try_once()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        if self._client is not None:
            if self.held:
                self._valid_until = 0.0
                try:
                    await self._client.eval(RELEASE, 1, self.key, self.token)
                    log.info("lease released key=%s", self.key)
                except (RedisError, OSError):
                    pass   # it lapses by itself within one ttl
            await self._client.aclose()
            self._client = None

    async def try_once(self) -> bool:
        """Take the lease if it is free, renew it if it is ours; returns whether we hold it."""
        assert self._client is not None
        was_held = self.held
        started = time.monotonic()
        try:
            # Renew first: the key may still hold our token after a failed renewal.
            ok = bool(await self._client.eval(RENEW, 1, self.key, self.token, self.ttl_ms))
            if not ok:
                ok = bool(await self._client.set(self.key, self.token, nx=True, px=self.ttl_ms))
        except (RedisError, OSError) as exc:
            if not self._failing:
                log.warning("lease: redis unreachable (%s); background jobs wait", type(exc).__name__)
            self._failing = True
            return self.held     # still ours until the deadline already set
        self._failing = False
        if ok:
            self._valid_until = started + self.ttl_ms / 1000 - self.margin_s
            if not was_held:
                log.info("lease acquired key=%s holder=%s: this process runs the background jobs",
                         self.key, self.token)
        else:
            self._valid_until = 0.0
            if was_held:
                log.warning("lease lost key=%s: another process runs the background jobs", self.key)
        return ok

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.renew_s)
            try:
                await self.try_once()
            except Exception:   # never let the renewals stop: that would hand the jobs away
                log.exception("lease: renewal failed")
