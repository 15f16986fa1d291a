"""The idle-conns scenario (bench/README.md): one socket per user (their first: a presence
change each), then idle sockets connected to `/chat` in levels of 1,000, 3,000 and 10,000, then a level of 50,000 that must stay alive through two ping
intervals. Every process of the run has the open-files limit raised to its hard limit (as
the systemd unit's ``LimitNOFILE``); where that limit is below what the big level needs, the
level is as big as the limit allows and the result says what limited it."""
from __future__ import annotations

import asyncio
import math

from .common import rss_kib

IDLE_LEVELS = (1000, 3000, 10000)
BIG_LEVEL = 50_000
IDLE_PING_MS = 5000
FD_RESERVE = 500   # descriptors a process keeps for everything but the sockets (pool, logs, pipes)


def nofile_of(pid: int) -> int | None:
    """The soft open-files limit of a process (/proc/<pid>/limits)."""
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    return None


def source_address(worker: int) -> str:
    """Worker w connects from 127.0.0.(w+2): one loopback address has ~28,000 ephemeral ports."""
    return f"127.0.0.{worker + 2}"


async def _settle_and_check(bench, wait_s: float) -> tuple[dict, dict]:
    await asyncio.to_thread(bench.pool.call, "idle_mark", timeout=30)
    m = bench.meter()
    await asyncio.sleep(wait_s)
    checks = await asyncio.to_thread(bench.pool.call, "idle_check", timeout=120)
    cpu_idle = m.stop()
    total = {"alive": 0, "pinged": 0, "pinged_twice": 0, "closed": {}}
    for c in checks:
        for key in ("alive", "pinged", "pinged_twice"):
            total[key] += c[key]
        for k, v in c["closed"].items():
            total["closed"][k] = total["closed"].get(k, 0) + v
    return total, cpu_idle


async def run(bench, target: str) -> None:
    pid = bench.server.pid
    W = len(bench.pool)
    await asyncio.sleep(0.5)
    rss_base = rss_kib(pid)
    levels = []
    wait_s = IDLE_PING_MS / 1000 + 1.5
    first = await first_sockets(bench, target, W)
    current = first["sockets"]   # keys idle0… are taken by them, connected or not
    for level in IDLE_LEVELS:
        keys = [(f"idle{i}", bench.users[i % len(bench.users)].token) for i in range(current, level)]
        assign = [i % W for i in range(current, level)]
        m = bench.meter()
        conn = await bench.connect_all(keys, assign, concurrency=64, timeout=120)
        cpu_connect = m.stop()
        current += conn["ok"]
        await asyncio.sleep(0.5)
        rss_conn = rss_kib(pid)
        seen, cpu_idle = await _settle_and_check(bench, wait_s)
        rss_after = rss_kib(pid)
        alive, pinged = seen["alive"], seen["pinged"]
        row = {"sockets": level, "connected_new": conn["ok"], "connect_failed": conn["failed"],
               "connect_errors": conn["errors"], "connect_s": round(conn["elapsed_s"], 2),
               "connects_per_s": round(conn["rate"], 1) if conn["rate"] else None,
               "rss_base_kib": rss_base, "rss_kib": rss_conn, "rss_after_ping_kib": rss_after,
               "rss_per_socket_kib": round((rss_after - rss_base) / max(current, 1), 2),
               "alive_after_ping_interval": alive, "pinged": pinged, "closed": seen["closed"],
               "wait_s": wait_s, "cpu_connect": cpu_connect, "cpu_idle": cpu_idle,
               "server_cpu_ms_per_connect": _cpu_ms_per_connect(cpu_connect, conn["ok"]),
               "pass": conn["failed"] == 0 and alive == level and pinged == level}
        levels.append(row)
        bench.log(f"  idle-conns[{target}] {level}: {row['connects_per_s']} connects/s, "
                  f"{row['rss_per_socket_kib']} KiB/socket, alive {alive}/{level}, pinged {pinged}, "
                  f"cpu {cpu_connect}")
        if conn["failed"] or alive < current:
            break
    await asyncio.to_thread(bench.pool.call, "close_all", timeout=120)
    wanted = getattr(bench.args, "idle_big", BIG_LEVEL)
    # ~300 connects/s on a busy 2-core box, two ping intervals, closing
    fits = min(wanted, (nofile_of(bench.server.pid) or 1024) - FD_RESERVE)
    if wanted and bench.out_of_time(fits / 300 + 2 * IDLE_PING_MS / 1000 + 20):
        bench.notes.append(f"idle-conns [{target}]: the big level ({wanted:,} sockets) was skipped "
                           "for the time budget (run it alone: --only idle-conns)")
        wanted = 0
    big = (await big_level(bench, target, rss_base, wanted, peak=current)
           if wanted and len(levels) == len(IDLE_LEVELS) else None)
    bench.add({"scenario": "idle-conns", "target": target, "ping_interval_ms": IDLE_PING_MS,
               "users_shared": len(bench.users), "first_sockets": first, "levels": levels, "big": big,
               "ok": (first["connect_failed"] == 0 and all(r["pass"] for r in levels) and len(levels) == len(IDLE_LEVELS)
                      and (not wanted or (big is not None and big["pass"])))})


async def first_sockets(bench, target: str, W: int) -> dict:
    """One socket per user before the levels: each is its user's first, so it changes their
    presence (stored, and told to everyone who knows them: with group-max's 200-member group,
    to every other user's sockets). The levels then add further sockets of users already
    online, the same kind of connect at every level. Before 2026-12-01 the first level mixed
    these 200 presence changes into its 1,000 connects and the others had none, which made
    1k look three times slower than 3k; they are measured here on their own instead."""
    keys = [(f"idle{i}", u.token) for i, u in enumerate(bench.users)]
    m = bench.meter()
    conn = await bench.connect_all(keys, [i % W for i in range(len(keys))], concurrency=64, timeout=120)
    cpu = m.stop()
    row = {"sockets": len(keys), "connected": conn["ok"], "connect_failed": conn["failed"],
           "connect_errors": conn["errors"], "connect_s": round(conn["elapsed_s"], 2),
           "connects_per_s": round(conn["rate"], 1) if conn["rate"] else None, "cpu_connect": cpu,
           "server_cpu_ms_per_connect": _cpu_ms_per_connect(cpu, conn["ok"])}
    bench.log(f"  idle-conns[{target}] first sockets of {len(keys)} users: {row['connects_per_s']} connects/s, "
              f"{row['server_cpu_ms_per_connect']} ms server CPU each, cpu {cpu}")
    await asyncio.sleep(0.5)
    return row


def _cpu_ms_per_connect(cpu: dict, connects: int) -> float | None:
    if not connects or cpu.get("server") is None:
        return None
    return round(cpu["server"] * cpu["window_s"] / connects * 1000, 3)


async def big_level(bench, target: str, rss_base: int | None, wanted: int = BIG_LEVEL, peak: int = 0) -> dict:
    """``wanted`` sockets from scratch (the levels before are closed), from one loopback
    address per worker, alive and pinged twice after two ping intervals. The RSS per socket
    counts from before the first level; the server keeps the memory of the closed levels for
    reuse, so it is only given when this level holds more sockets than the ``peak`` before."""
    from .workers import WorkerPool
    server_limit = nofile_of(bench.server.pid) or 1024
    level = min(wanted, server_limit - FD_RESERVE)
    limited_by = None
    if level < wanted:
        limited_by = (f"the server's open-files limit ({server_limit}, the hard limit of this "
                      f"machine's processes; the systemd unit's LimitNOFILE is 65536)")
        bench.notes.append(f"idle-conns [{target}]: {wanted:,} sockets do not fit under {limited_by}: "
                           f"the big level ran with {level:,}")
    worker_limit = min(r["nofile"] for r in await asyncio.to_thread(bench.pool.call, "limits", timeout=30))
    n_workers = max(len(bench.pool), math.ceil(level / (worker_limit - FD_RESERVE)))
    saved = bench.pool
    pool = saved if n_workers == len(saved) else await asyncio.to_thread(WorkerPool, n_workers, bench.args.backend)
    bench.pool = pool
    try:
        W = len(pool)
        keys = [(f"big{i}", bench.users[i % len(bench.users)].token) for i in range(level)]
        assign = [i % W for i in range(level)]
        m = bench.meter()
        conn = await bench.connect_all(keys, assign, concurrency=64, timeout=max(120.0, level / 150),
                                       sources=[source_address(w) for w in range(W)])
        cpu_connect = m.stop()
        await asyncio.sleep(0.5)
        rss_conn = rss_kib(bench.server.pid)
        wait_s = 2 * IDLE_PING_MS / 1000 + 1.5
        seen, cpu_idle = await _settle_and_check(bench, wait_s)
        rss_after = rss_kib(bench.server.pid)
        row = {"sockets": level, "target_sockets": wanted, "limited_by": limited_by,
               "workers": W, "sources": [source_address(w) for w in range(W)],
               "connected": conn["ok"], "connect_failed": conn["failed"], "connect_errors": conn["errors"],
               "connect_s": round(conn["elapsed_s"], 2),
               "connects_per_s": round(conn["rate"], 1) if conn["rate"] else None,
               "rss_base_kib": rss_base, "rss_kib": rss_conn, "rss_after_ping_kib": rss_after,
               "rss_per_socket_kib": (round((rss_after - rss_base) / conn["ok"], 2)
                                      if rss_base and rss_after and conn["ok"] > peak else None),
               "alive_after_two_ping_intervals": seen["alive"], "pinged": seen["pinged"],
               "pinged_twice": seen["pinged_twice"],
               "closed": seen["closed"], "wait_s": wait_s, "cpu_connect": cpu_connect, "cpu_idle": cpu_idle,
               "server_cpu_ms_per_connect": _cpu_ms_per_connect(cpu_connect, conn["ok"]),
               # Twice is not guaranteed within the window: the next ping is due an interval after
               # the pong, so a generator slow to answer (thousands of pings/s) delays it.
               "pass": conn["failed"] == 0 and seen["alive"] == level and seen["pinged"] == level}
        bench.log(f"  idle-conns[{target}] big level {level:,} (target {wanted:,}): "
                  f"{row['connects_per_s']} connects/s, {row['rss_per_socket_kib']} KiB/socket, "
                  f"alive {seen['alive']:,}, pinged {seen['pinged']:,} (twice {seen['pinged_twice']:,}), "
                  f"idle cpu {cpu_idle}")
        await asyncio.to_thread(pool.call, "close_all", timeout=300)
        return row
    finally:
        bench.pool = saved
        if pool is not saved:
            await asyncio.to_thread(pool.close)
