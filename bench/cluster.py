"""Scenarios `cluster-dm` and `cluster-group` (bench/runner.py): `dm-max` and `group-max`
across two processes. Two `nexus-chat serve` processes (realtime.adapter = redis) on the run's
database and a private Redis:

* `cluster-dm`: of each of the 100 pairs one user is connected to process A, the other to
  process B, so every message is acknowledged by the sender's process and delivered by the
  other one through Redis: the added latency of a cross-process delivery, rate by rate, against
  the same run's `dm-max`.
* `cluster-group`: the 200 members alternate between A and B (the sender on A), so each
  process fans out to half of them: deliveries/s and connects/s of two processes against the
  same run's `group-max` (one process).

Same open-loop ladders, pass rules and fields as the one-process scenarios.

The Redis server is `redis-server` on a free port, nothing saved, stopped at the end; the
scenario is skipped (recorded as an error saying why) without one.
"""
from __future__ import annotations

import asyncio
import sys
import uuid
from typing import TYPE_CHECKING

from nexus_chat.embedded_db import PrivateRedis

from .serverctl import nexus_server

if TYPE_CHECKING:
    from .runner import Bench

TARGET = "nexus×2 (redis)"


async def phase(bench: Bench) -> None:
    """Two processes on one Redis; runs `cluster-dm`, then stops them."""
    redis = PrivateRedis(bench.workdir)
    env = {"NEXUS_REALTIME_ADAPTER": "redis", "NEXUS_REDIS_KEY": f"nexus-bench-{uuid.uuid4().hex[:8]}"}
    try:
        await asyncio.to_thread(redis.start)
        env["NEXUS_REDIS_URL"] = redis.url
        # One after the other: the first reads var/secrets.json as the seeding server left it.
        first = nexus_server("nexus-a", bench.db, bench.var, bench.workdir, extra_env=env)
        second = nexus_server("nexus-b", bench.db, bench.var, bench.workdir, extra_env=env)
        await bench.start(first)
        await asyncio.to_thread(second.start)
        bench.extra_servers = [second]
        bench.extra_pids = {"redis": redis.pids()}
        print(f"[bench] cluster: nexus-a at {first.url} (pid {first.pid}), nexus-b at {second.url} "
              f"(pid {second.pid}), redis-server at {redis.url}", file=sys.stderr, flush=True)
        urls = (first.url, second.url)
        if "cluster-dm" in bench.selected:
            await bench.guarded("cluster-dm", lambda: bench.dm_max(TARGET, scenario="cluster-dm", urls=urls),
                                target=TARGET)
        if "cluster-group" in bench.selected:
            await bench.guarded("cluster-group", lambda: bench.group_max(TARGET, scenario="cluster-group",
                                                                         urls=urls), target=TARGET)
    finally:
        for server in getattr(bench, "extra_servers", []):
            await asyncio.to_thread(server.stop)
        bench.extra_servers = []
        bench.extra_pids = {}
        await bench.stop_server()
        await asyncio.to_thread(redis.stop)
