"""`python -m bench` / `bench/run`: the Nexus Chat load benchmark (issue 6). See bench/README.md."""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from array import array
from pathlib import Path

import aiohttp

from . import cluster, content, growth, idle, recovery, rest
from .common import P99_LIMIT_MS, CpuMeter, box_busy_seconds, descendants, latency_summary, raise_nofile, rss_kib
from .report import markdown_table, step_text, summary_text
from .seed import PASSWORD, User, make_group, seed_users
from .serverctl import BenchDatabase, ceiling_server, make_workdir, nexus_server
from .sio import DEFAULT_BACKEND
from .workers import WorkerPool

BENCH_DIR = Path(__file__).resolve().parent
SCENARIOS = ("rest-me", "rest-history", "rest-history-rich", "recent-1k", "dm-max", "group-max", "group-linear",
             "photo-upload", "history-depth", "search",
             "recovery", "dm-max-recovery", "group-max-recovery", "idle-conns", "login-storm", "cluster-dm",
             "cluster-group", "ceiling")
# Run only when named in --only (a full run would pass its time limit): dm-max and group-max
# again on the server with connection-state recovery on (target "nexus+recovery"), and across
# two processes sharing rooms through Redis (bench/cluster.py, target "nexus×2 (redis)").
OPT_IN = frozenset({"dm-max-recovery", "group-max-recovery", "cluster-dm", "cluster-group"})
RECOVERY_PHASE = frozenset({"recovery"}) | {"dm-max-recovery", "group-max-recovery"}
DM_RATES = (100, 200, 400, 800, 1600, 3200, 6400)
GROUP_RATES = (10, 20, 40, 60, 80, 100, 130, 170, 220, 280, 360, 460, 600, 800)   # msg/s into the group; ×199 deliveries each
# Members that send, together at the step's rate (message i from sender i mod GROUP_SENDERS).
# Not one: the server handles one connection's events one after another (its commit and
# event-log write before the next), so a lone sender cannot pass ~1 / (send latency), some
# 100-150 msg/s on this box, whatever the fan-out costs: at 130 msg/s the old single-sender
# step queued in the sender's inbox (acks as late as deliveries, the server's loop idle).
# 20 senders keep each below 20 msg/s at the top rate, as busy as a fast typist's burst.
GROUP_SENDERS = 20
# Too long for the 10-minute run at full size (seeding 1,000,000 messages alone takes 4-6 min
# on the 2-core box): a full `bench/run` leaves them out and says so; `--only search` runs it,
# and `--quick` runs it at 100,000 messages.
SEPARATE = frozenset({"search", "history-depth"})
BUDGET_S = 720.0   # soft time budget: ladders stop stepping (and say so) rather than pass 12 min
N_USERS = 200   # 100 DM pairs; the same users form the 200-member group
IDLE_PING_MS = idle.IDLE_PING_MS


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.quick = args.quick
        self.selected = set(args.only.split(",")) if args.only else set(SCENARIOS) - OPT_IN
        self.skipped = set() if args.only or args.quick else set(SEPARATE)
        self.selected -= self.skipped
        unknown = self.selected - set(SCENARIOS)
        if unknown:
            raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}")
        self.results: list[dict] = []
        self.workdir = make_workdir()
        self.var = self.workdir / "var"
        self.var.mkdir()
        self.db: BenchDatabase | None = None
        self.pool: WorkerPool | None = None
        self.users: list[User] = []
        self.server = None
        self.extra_servers: list = []         # cluster-*: the second process
        self.extra_pids: dict[str, list[int]] = {}   # cluster-*: redis
        self.t_begin = time.monotonic()
        self.in_ceiling_phase = False
        self.wrk = None
        self.notes: list[str] = [f"{name}: not part of a full run (too long for its 12 minutes); run it with "
                                 f"`bench/run --only {name}`" for name in sorted(self.skipped)]

    # ------------------------------------------------------------------ helpers
    def dur(self, full: float, quick: float) -> float:
        return quick if self.quick else full

    def meter(self) -> CpuMeter:
        servers = ([self.server.pid] if self.server else []) + [s.pid for s in self.extra_servers]
        # with their worker processes (the media pool: Pillow runs there, started by the first upload)
        groups = {"server": servers + [kid for pid in servers for kid in descendants(pid)],
                  "db": self.db.pids() if (self.db and self.server and self.server.name.startswith("nexus")) else [],
                  "generator": list(self.pool.pids) if self.pool else [], **self.extra_pids}
        return CpuMeter(groups).start()

    async def cpu_window(self, t_start: float, duration: float) -> dict:
        """CPU shares over exactly [t_start, t_start + duration] (the load window of a step)."""
        await asyncio.sleep(max(0.0, t_start - time.monotonic()))
        m = self.meter()
        await asyncio.sleep(max(0.0, t_start + duration - time.monotonic()))
        return m.stop()

    def add(self, result: dict) -> dict:
        result.setdefault("target", "nexus")
        result.setdefault("box_busy_before_cores", getattr(self, "noise_before", None))
        self.results.append(result)
        log(f"result {result['scenario']} [{result['target']}]: {summary_text(result)}")
        return result

    def ensure_wrk(self) -> str | None:
        path = shutil.which("wrk")
        if path:
            return path
        log("wrk not found: installing it with apt-get")
        try:
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            if subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, capture_output=True,
                              timeout=180).returncode != 0:
                subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=180)
                subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, capture_output=True, timeout=180)
        except Exception as exc:  # noqa: BLE001
            log(f"apt-get failed: {exc}")
        return shutil.which("wrk")

    async def run_wrk(self, url: str, tokens: list[str], duration: float, connections: int = 32) -> dict:
        """wrk on ``url``, each request with the next of ``tokens`` (several users' traffic)."""
        wrk = self.ensure_wrk()
        if wrk is None:
            self.notes.append("wrk unavailable: REST scenarios used the Python aiohttp fallback generator")
            return await python_http_load(url, tokens, duration, connections)
        cmd = [wrk, "-t1", f"-c{connections}", f"-d{int(duration)}s", "--latency", "--timeout", "5s",
               "-s", str(BENCH_DIR / "wrk" / "auth.lua"), url]
        proc = await asyncio.create_subprocess_exec(*cmd, env=dict(os.environ, BENCH_TOKENS=",".join(tokens)),
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        try:
            async with asyncio.timeout(duration + 30):
                out, _ = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        text = out.decode(errors="replace")
        line = next((ln for ln in text.splitlines() if ln.startswith("BENCH_JSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no BENCH_JSON line:\n{text[-2000:]}")
        raw = json.loads(line[len("BENCH_JSON "):])
        seconds = raw["duration_us"] / 1e6
        errors = raw["errors"]
        return {"generator": "wrk -t1 (Lua header + done() JSON)", "requests": raw["requests"],
                "duration_s": round(seconds, 2), "rps": round(raw["requests"] / seconds, 1),
                "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000,
                "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000,
                "non_2xx": errors["status"], "socket_errors": {k: v for k, v in errors.items() if k != "status"}}

    # ------------------------------------------------------------------ phases
    async def run(self) -> dict:
        raise_nofile()
        need_nexus = self.selected - {"ceiling"}
        log(f"workdir {self.workdir}; scenarios: {', '.join(s for s in SCENARIOS if s in self.selected)}"
            f"{' (quick)' if self.quick else ''}")
        self.pool = WorkerPool(self.args.workers, self.args.backend)
        try:
            if need_nexus:
                self.db = BenchDatabase(self.workdir).start()
                log(f"database: {self.db.kind}, schema {self.db.name}")
                await self.phase_main()
                if self.selected & RECOVERY_PHASE:
                    await self.phase_recovery()
                if self.selected & {"idle-conns", "login-storm"}:
                    await self.phase_idle_login()
                if self.selected & {"cluster-dm", "cluster-group"}:
                    await cluster.phase(self)
            if "ceiling" in self.selected:
                await self.phase_ceiling()
        finally:
            if self.server is not None:
                self.server.stop()
                self.server = None
            await asyncio.to_thread(self.pool.close)
            if self.db is not None:
                self.db.stop()
        return self.report()

    async def start(self, server) -> None:
        self.server = server
        await asyncio.to_thread(server.start)
        log(f"{server.name} up at {server.url} (pid {server.pid})")

    async def stop_server(self) -> None:
        if self.server is not None:
            code = await asyncio.to_thread(self.server.stop)
            log(f"{self.server.name} stopped (exit {code})")
            self.server = None

    def out_of_time(self, next_s: float) -> bool:
        """True when a further step of ``next_s`` seconds would overrun the run's budget. The
        ceiling's phase runs its short ladders to the end: its column is what the server's
        figures are read against."""
        if self.args.budget and not self.in_ceiling_phase and time.monotonic() + next_s + 15 > self.t_begin + self.args.budget:
            self.notes.append(f"time budget: a ladder stopped early at {time.monotonic() - self.t_begin:.0f} s")
            log("time budget reached: stopping this ladder")
            return True
        return False

    async def wait_quiet(self, limit_cores: float = 0.3, max_wait_s: float = 5.0) -> float:
        """The box is shared: before a scenario, wait (bounded) until the rest of the machine is
        nearly idle; returns the busy cores last seen (recorded with the result)."""
        deadline = time.monotonic() + max_wait_s
        while True:
            b0 = box_busy_seconds()
            await asyncio.sleep(0.5)
            busy = (box_busy_seconds() - b0) / 0.5
            if busy <= limit_cores or time.monotonic() > deadline:
                return round(busy, 2)

    async def start_profiler(self, name: str, target: str):
        """--profile DIR: py-spy samples the server during the scenario (raw collapsed stacks
        + a flame graph); adds CPU on the box, so profiled runs are not the figures of record."""
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not self.args.profile or not Path(spy).exists():
            if self.args.profile:
                log("--profile: py-spy not found (pip install py-spy)")
            return None
        out = Path(self.args.profile)
        out.mkdir(parents=True, exist_ok=True)
        base = out / f"{name}-{target}"
        proc = await asyncio.create_subprocess_exec(
            spy, "record", "--pid", str(self.server.pid), "--rate", "100", "--nonblocking",
            "--format", "raw", "-o", str(base) + ".txt",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        return proc

    async def stop_profiler(self, proc) -> None:
        if proc is None:
            return
        if proc.returncode is None:
            proc.send_signal(2)
            try:
                async with asyncio.timeout(20):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def guarded(self, name: str, coro_fn, target: str = "nexus") -> None:
        t0 = time.monotonic()
        self.noise_before = await self.wait_quiet()
        if self.noise_before > 0.3:
            log(f"{name} [{target}]: the box is busy ({self.noise_before} cores) before the start")
        profiler = await self.start_profiler(name, target)
        try:
            await coro_fn()
        except Exception as exc:  # noqa: BLE001 - one broken scenario must not sink the run
            log(f"{name} [{target}] FAILED: {exc!r}")
            self.add({"scenario": name, "target": target, "error": f"{exc!r}",
                      "traceback": traceback.format_exc()[-3000:]})
            if self.pool.broken:
                log("replacing the load-generator workers after a timeout")
                await asyncio.to_thread(self.pool.close)
                self.pool = WorkerPool(self.args.workers, self.args.backend)
            else:
                try:
                    await asyncio.to_thread(self.pool.call, "close_all", timeout=60)
                except Exception:  # noqa: BLE001
                    pass
        finally:
            await self.stop_profiler(profiler)
        log(f"{name} [{target}] took {time.monotonic() - t0:.1f} s")

    async def phase_main(self) -> None:
        await self.start(nexus_server("nexus", self.db, self.var, self.workdir, bcrypt_rounds=4))
        t0 = time.monotonic()
        self.users, timings = await seed_users(self.server.url, self.var / "mail", "bench", N_USERS)
        log(f"seeded {len(self.users)} users through the API in {time.monotonic() - t0:.1f} s {timings}")
        self.seed_timings = timings
        if "rest-me" in self.selected:
            await self.guarded("rest-me", lambda: rest.rest_me(self))
        if "rest-history" in self.selected:
            await self.guarded("rest-history", lambda: rest.rest_history(self))
        if "rest-history-rich" in self.selected:
            await self.guarded("rest-history-rich", lambda: rest.rest_history(self, rich=True))
        if "recent-1k" in self.selected:
            await self.guarded("recent-1k", lambda: rest.recent_1k(self))
        if "dm-max" in self.selected:
            await self.guarded("dm-max", lambda: self.dm_max("nexus"))
        if "group-max" in self.selected:
            await self.guarded("group-max", self.group_max)
        if "group-linear" in self.selected:
            await self.guarded("group-linear", lambda: growth.group_linear(self))
        if "photo-upload" in self.selected:
            await self.guarded("photo-upload", lambda: content.photo_upload(self))
        if "history-depth" in self.selected:   # adds a million messages to the schema
            await self.guarded("history-depth", lambda: growth.history_depth(self))
        if "search" in self.selected:   # last: it adds a million messages to the schema
            await self.guarded("search", lambda: content.search(self))
        await self.stop_server()

    async def phase_recovery(self) -> None:
        """A server with connection-state recovery on: the hot paths again (every stored
        event then carries its offset), then the mass recovery."""
        await self.start(nexus_server("nexus-recovery", self.db, self.var, self.workdir, bcrypt_rounds=4,
                                      extra_env={"NEXUS_RECOVERY": "on"}))
        if "dm-max-recovery" in self.selected:
            await self.guarded("dm-max", lambda: self.dm_max("nexus+recovery"), target="nexus+recovery")
        if "group-max-recovery" in self.selected:
            await self.guarded("group-max", lambda: self.group_max("nexus+recovery"), target="nexus+recovery")
        if "recovery" in self.selected:
            await self.guarded("recovery", lambda: recovery.run(self))
        await self.stop_server()

    async def phase_idle_login(self) -> None:
        await self.start(nexus_server("nexus-ping5s-bcrypt12", self.db, self.var, self.workdir,
                                      bcrypt_rounds=12, ping_interval_ms=IDLE_PING_MS))
        if "idle-conns" in self.selected:
            await self.guarded("idle-conns", lambda: self.idle_conns("nexus"))
        if "login-storm" in self.selected:
            await self.guarded("login-storm", self.login_storm)
        await self.stop_server()

    async def phase_ceiling(self) -> None:
        await self.start(ceiling_server(self.workdir, self.workdir, ping_interval_ms=IDLE_PING_MS))
        self.in_ceiling_phase = True
        if not self.users:
            self.users = fake_users(N_USERS)
        await self.guarded("rest-me", lambda: rest.rest_me(self, "ceiling"), target="ceiling")
        # The ceiling's ladders start where the server's stopped: what matters is whether the
        # box itself holds the next steps, and full ladders from the bottom take minutes.
        held = next((r.get("held_msg_s") for r in self.results
                     if r["scenario"] == "dm-max" and r["target"] == "nexus"), None)
        await self.guarded("dm-max", lambda: self.dm_max("ceiling", first_rate=held or DM_RATES[0]),
                           target="ceiling")
        # A quarter of the server's: the bare Tornado WebSocket handler fans out less than the
        # server's own transport (realtime/wsframes.py), so its ladder must start lower.
        held = next((r.get("held_sender_msg_s") for r in self.results
                     if r["scenario"] == "group-max" and r["target"] == "nexus"), None)
        await self.guarded("group-max", lambda: self.group_max("ceiling", first_rate=(held or 0) // 4),
                           target="ceiling")
        # A fresh process: memory per idle socket is measured from a heap no earlier scenario grew.
        await self.stop_server()
        await self.start(ceiling_server(self.workdir, self.workdir, ping_interval_ms=IDLE_PING_MS))
        await self.guarded("idle-conns", lambda: self.idle_conns("ceiling"), target="ceiling")
        await self.stop_server()

    # ------------------------------------------------------------------ scenarios
    def _call_first(self, cmd: str, kwargs: dict, timeout: float = 180) -> dict:
        """Run a command on worker 0 only."""
        conn = self.pool.conns[0]
        conn.send((cmd, kwargs))
        if not conn.poll(timeout):
            self.pool.broken = True
            raise TimeoutError(f"worker 0 did not answer {cmd!r} within {timeout} s")
        res = conn.recv()
        if "error" in res:
            raise RuntimeError(res["error"])
        return res

    async def connect_all(self, keys_tokens: list[tuple[str, str]], assign: list[int],
                          concurrency: int = 64, timeout: float = 90.0,
                          urls: tuple[str, ...] | None = None, sources: list[str] | None = None) -> dict:
        """Connect sockets on the workers (``assign[i]`` = worker of the i-th socket) at once;
        ``urls`` (cluster-*): socket i goes to ``urls[i % len(urls)]``, else to the server;
        ``sources[w]``: the loopback address worker w connects from (idle-conns' big level)."""
        # ``timeout`` bounds the workers' connecting (pool.call takes its own, a little longer)
        per = [{"tokens": [], "timeout": timeout} if sources is None
               else {"tokens": [], "timeout": timeout, "source": sources[w]} for w in range(len(self.pool))]
        for i, ((key, token), w) in enumerate(zip(keys_tokens, assign)):
            per[w]["tokens"].append((key, token) if urls is None else (key, token, urls[i % len(urls)]))
        start_at = time.monotonic() + 0.3
        res = await asyncio.to_thread(self.pool.call, "connect", per, url=self.server.url,
                                      concurrency=concurrency, timeout=timeout + 30, start_at=start_at)
        ok = sum(r["ok"] for r in res)
        failed = sum(r["failed"] for r in res)
        busy = [r for r in res if r["ok"] + r["failed"]]
        elapsed = (max(r["t_end"] for r in busy) - min(r["t_start"] for r in busy)) if busy else 0.0
        errors = [e for r in res for e in r["errors"]][:5]
        return {"ok": ok, "failed": failed, "elapsed_s": elapsed, "errors": errors,
                "rate": ok / elapsed if elapsed > 0 else None}

    async def dm_max(self, target: str, scenario: str = "dm-max", urls: tuple[str, str] | None = None,
                     first_rate: int = DM_RATES[0]) -> None:
        """``urls``: the two processes of `cluster-dm`; the first user of each pair connects to
        the first, the other to the second."""
        n_pairs = N_USERS // 2
        users = self.users[:2 * n_pairs]
        W = len(self.pool)
        keys = [(f"dm{i}", u.token) for i, u in enumerate(users)]
        assign = [(i // 2) % W for i in range(len(users))]   # both ends of a pair in one worker
        conn = await self.connect_all(keys, assign, urls=urls)   # pair p: users 2p and 2p+1
        if conn["failed"]:
            raise RuntimeError(f"{conn['failed']} DM sockets failed to connect: {conn['errors']}")
        pairs_per = [[] for _ in range(W)]
        for p in range(n_pairs):
            a, b = users[2 * p], users[2 * p + 1]
            pairs_per[p % W].append((f"dm{2 * p}", a.id, f"dm{2 * p + 1}", b.id))
        step_s = self.dur(20, 4)
        steps = []
        held = None
        for rate in (r for r in DM_RATES if r >= first_rate):
            if steps and self.out_of_time(step_s + 6):
                break
            tag = f"dm{rate}"
            t_start = time.monotonic() + 0.5
            per = [{"pairs": pairs_per[w], "rate": rate * len(pairs_per[w]) / n_pairs}
                   for w in range(W)]
            cpu_task = asyncio.create_task(self.cpu_window(t_start, step_s))
            res = await asyncio.to_thread(self.pool.call, "dm_step", per, tag=tag, duration=step_s,
                                          t_start=t_start, drain_s=5.0, timeout=step_s + 30)
            cpu = await cpu_task
            step = merge_dm(rate, step_s, res)
            step["cpu"] = cpu
            steps.append(step)
            log(f"  {scenario}[{target}] {rate} msg/s: {step_text(step)}")
            if not step["pass"]:
                break
            held = rate
            await asyncio.sleep(1.0)
        await asyncio.to_thread(self.pool.call, "close_all", timeout=60)
        best = next((s for s in steps if s["rate"] == held), None)
        self.add({"scenario": scenario, "target": target, "pairs": n_pairs, "step_s": step_s,
                  "held_msg_s": held, "p99_limit_ms": P99_LIMIT_MS,
                  "at_held": {k: best[k] for k in ("delivery", "ack", "cpu")} if best else None,
                  "first_failure": steps[-1] if steps and not steps[-1]["pass"] else None,
                  "steps": steps, "ok": held is not None})

    async def group_max(self, target: str = "nexus", scenario: str = "group-max",
                        urls: tuple[str, str] | None = None, first_rate: int = GROUP_RATES[0]) -> None:
        """``urls``: the two processes of `cluster-group`; members alternate between them (and
        so do the GROUP_SENDERS senders, members 0 to GROUP_SENDERS - 1)."""
        owner, members = self.users[0], self.users[:N_USERS]
        group_id = await make_group(self.server.url, owner, members)
        W = len(self.pool)
        keys = [(f"g{i}", u.token) for i, u in enumerate(members)]
        assign = [i % W for i in range(len(members))]
        conn = await self.connect_all(keys, assign, urls=urls)
        if conn["failed"]:
            raise RuntimeError(f"{conn['failed']} group sockets failed to connect: {conn['errors']}")
        await asyncio.sleep(1.0)   # let presence fan-out of the connects settle
        receivers = [[] for _ in range(W)]
        senders = [[] for _ in range(W)]
        for i in range(len(members)):
            receivers[assign[i]].append(f"g{i}")
            if i < GROUP_SENDERS:
                senders[assign[i]].append([f"g{i}", i])
        n_recv = len(members) - 1   # each message reaches every member but its sender
        step_s = self.dur(8, 3)
        steps = []
        held = None
        for rate in (r for r in GROUP_RATES if r >= first_rate):
            if steps and self.out_of_time(step_s + 6):
                break
            tag = f"g{rate}"
            t_start = time.monotonic() + 0.5
            per = [{"receivers": receivers[w], "senders": senders[w]} for w in range(W)]
            cpu_task = asyncio.create_task(self.cpu_window(t_start, step_s))
            res = await asyncio.to_thread(self.pool.call, "group_step", per, tag=tag, group_id=group_id,
                                          n_senders=GROUP_SENDERS, rate=rate, duration=step_s, t_start=t_start, drain_s=5.0,
                                          timeout=step_s + 30)
            cpu = await cpu_task
            step = merge_group(rate, step_s, n_recv, res)
            step["cpu"] = cpu
            steps.append(step)
            log(f"  {scenario}[{target}] {rate} msg/s → {rate * n_recv} deliveries/s: {step_text(step)}")
            if not step["pass"]:
                break
            held = step
            await asyncio.sleep(1.0)
        await asyncio.to_thread(self.pool.call, "close_all", timeout=60)
        self.add({"scenario": scenario, "target": target, "members": len(members), "senders": GROUP_SENDERS,
                  "receivers_counted": n_recv, "connects_per_s": round(conn["rate"] or 0, 1),
                  "step_s": step_s, "held_sender_msg_s": held["rate"] if held else None,
                  "held_deliveries_s": held["deliveries_per_s_planned"] if held else None,
                  "at_held": {k: held[k] for k in ("delivery", "cpu")} if held else None,
                  "first_failure": steps[-1] if steps and not steps[-1]["pass"] else None,
                  "steps": steps, "ok": held is not None})

    async def idle_conns(self, target: str) -> None:
        await idle.run(self, target)

    def log(self, msg: str) -> None:
        log(msg)

    async def login_storm(self) -> None:
        storm_users, _ = await seed_users(self.server.url, self.var / "mail", "storm", 1, timeout_s=120)
        storm = storm_users[0]
        duration = self.dur(15, 5)
        me_token = self.users[0].token
        url = self.server.url
        me_lat: list[float] = []
        me_errors = 0
        login_lat: list[float] = []
        login_errors = 0
        m = self.meter()
        t0 = time.monotonic() + 0.2
        t_end = t0 + duration
        rate = 200.0
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256),
                                         timeout=aiohttp.ClientTimeout(total=30)) as me_s, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16),
                                      timeout=aiohttp.ClientTimeout(total=60)) as login_s:
            async def login_loop() -> None:
                nonlocal login_errors
                await asyncio.sleep(max(0.0, t0 - time.monotonic()))
                while time.monotonic() < t_end:
                    s = time.monotonic()
                    async with login_s.post(url + "/api/auth/login",
                                            json={"email": storm.email, "password": PASSWORD}) as r:
                        await r.read()
                        if r.status != 200:
                            login_errors += 1
                    login_lat.append(time.monotonic() - s)

            async def me_one(due: float) -> None:
                nonlocal me_errors
                try:
                    async with me_s.get(url + "/api/auth/me",
                                        headers={"Authorization": f"Bearer {me_token}"}) as r:
                        await r.read()
                        if r.status != 200:
                            me_errors += 1
                except Exception:  # noqa: BLE001
                    me_errors += 1
                me_lat.append(time.monotonic() - due)

            async def me_open_loop() -> None:
                tasks = []
                n = int(rate * duration)
                for i in range(n):
                    due = t0 + i / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(me_one(due)))
                await asyncio.wait(tasks, timeout=30)
            await asyncio.gather(me_open_loop(), *(login_loop() for _ in range(16)))
        cpu = m.stop()
        me = latency_summary(me_lat)
        logins = latency_summary(login_lat)
        self.add({"scenario": "login-storm", "duration_s": duration, "bcrypt_cost": 12,
                  "login_clients": 16, "me_rate": rate,
                  "me": {**me, "errors": me_errors}, "logins": {**logins, "errors": login_errors,
                                                                "per_s": round(len(login_lat) / duration, 1)},
                  "cpu": cpu, "ok": me_errors == 0 and login_errors == 0})

    # ------------------------------------------------------------------ output
    def report(self) -> dict:
        meta = machine_meta(self)
        out = {"meta": meta, "results": self.results, "notes": self.notes}
        out["table_md"] = markdown_table(self.results, meta)
        return out


# ---------------------------------------------------------------------- merging / text
def _lat(buf: bytes) -> array:
    a = array("d")
    a.frombytes(buf)
    return a


def merge_dm(rate: float, step_s: float, res: list[dict]) -> dict:
    planned = sum(r["planned"] for r in res)
    sent = sum(r["sent"] for r in res)
    acked = sum(r["acked"] for r in res)
    delivered = sum(r["delivered"] for r in res)
    ack_errors = sum(r["ack_errors"] for r in res)
    ack_lat = [x for r in res for x in _lat(r["ack_lat"])]
    del_lat = [x for r in res for x in _lat(r["del_lat"])]
    delivery = latency_summary(del_lat)
    lost = planned - min(acked, delivered)
    ok = (sent == planned and acked == planned and delivered == planned and ack_errors == 0
          and delivery["p99_ms"] is not None and delivery["p99_ms"] <= P99_LIMIT_MS)
    lag = max(r["lag_max_s"] for r in res)
    return {"rate": rate, "planned": planned, "sent": sent, "acked": acked, "delivered": delivered,
            "ack_errors": ack_errors, "lost": lost, "dup": sum(r["dup"] for r in res),
            "error_samples": [e for r in res for e in r["error_samples"]][:3],
            "closed_sockets": sum(r["closed_sockets"] for r in res),
            "delivered_per_s": round(delivered / step_s, 1),
            "ack": latency_summary(ack_lat), "delivery": delivery,
            "generator_lag_max_ms": round(lag * 1000, 1), "pass": ok}


def merge_group(rate: float, step_s: float, n_recv: int, res: list[dict]) -> dict:
    planned = res[0]["planned"]
    counts = array("H", bytes(2 * planned))
    for r in res:
        c = array("H")
        c.frombytes(r["counts"])
        for i, v in enumerate(c):
            counts[i] += v
    sent = sum(r["sent"] for r in res)
    deliveries = sum(r["deliveries"] for r in res)
    expected = planned * n_recv
    incomplete = sum(1 for v in counts if v < n_recv)
    del_lat = [x for r in res for x in _lat(r["del_lat"])]
    delivery = latency_summary(del_lat)
    ack = latency_summary([x for r in res for x in _lat(r["ack_lat"])])
    acked = sum(r["acked"] for r in res)
    ack_errors = sum(r["ack_errors"] for r in res)
    ok = (sent == planned and acked == planned and ack_errors == 0 and deliveries == expected
          and delivery["p99_ms"] is not None and delivery["p99_ms"] <= P99_LIMIT_MS)
    return {"rate": rate, "deliveries_per_s_planned": rate * n_recv, "planned": planned, "sent": sent,
            "acked": acked, "ack_errors": ack_errors,
            "error_samples": [e for r in res for e in r["error_samples"]][:3],
            "deliveries": deliveries, "expected": expected, "missing": expected - deliveries,
            "messages_incomplete": incomplete, "dup": sum(r["dup"] for r in res),
            "deliveries_per_s": round(deliveries / step_s, 1),
            "closed_sockets": sum(r["closed_sockets"] for r in res),
            "delivery": delivery, "ack": ack,
            "generator_lag_max_ms": round(max(r["lag_max_s"] for r in res) * 1000, 1),
            "client_loop_lag_max_ms": [round(r["loop_lag_max_s"] * 1000, 1) for r in res],
            "pass": ok}


def machine_meta(bench: Bench) -> dict:
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DIR.parent,
                                capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "nexus_chat", "handlers"],
                                    cwd=BENCH_DIR.parent, capture_output=True, text=True,
                                    timeout=5).stdout.strip())
    except Exception:  # noqa: BLE001
        commit, dirty = "unknown", False
    import tornado
    return {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} cores ({model}), {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, "
                       f"{platform.system()} {platform.release()}",
            "cores": os.cpu_count(), "python": platform.python_version(), "tornado": tornado.version,
            "database": (f"{bench.db.kind} {bench.db.version()}" if bench.db else "none"),
            "git_commit": commit + ("+dirty" if dirty else ""), "quick": bench.quick,
            "generator": f"{bench.args.workers} worker processes, {bench.args.backend} WebSocket client; "
                         "REST via wrk -t1",
            "seed": getattr(bench, "seed_timings", None),
            "total_s": round(time.monotonic() - bench.t_begin, 1)}


def fake_users(n: int) -> list[User]:
    """Users for a ceiling-only run: the ceiling server reads only the JWT's `sub`."""
    import base64
    import uuid
    users = []
    for i in range(n):
        uid = str(uuid.uuid4())
        payload = base64.urlsafe_b64encode(json.dumps({"sub": uid}).encode()).decode().rstrip("=")
        users.append(User(i, f"fake{i}", f"fake{i}@bench.example.com", uid, f"e30.{payload}.x"))
    return users


async def python_http_load(url: str, tokens: list[str], duration: float, connections: int) -> dict:
    """Fallback when wrk cannot be installed: closed-loop aiohttp clients (slower generator)."""
    lat: list[float] = []
    non_2xx = 0
    t_end = time.monotonic() + duration
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as s:
        async def loop(token: str) -> None:
            nonlocal non_2xx
            while time.monotonic() < t_end:
                t = time.monotonic()
                async with s.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
                    await r.read()
                    if r.status >= 300:
                        non_2xx += 1
                lat.append(time.monotonic() - t)
        t0 = time.monotonic()
        await asyncio.gather(*(loop(tokens[i % len(tokens)]) for i in range(connections)))
        elapsed = time.monotonic() - t0
    summary = latency_summary(lat)
    return {"generator": "python aiohttp fallback (wrk unavailable)", "requests": len(lat),
            "duration_s": round(elapsed, 2), "rps": round(len(lat) / elapsed, 1),
            "p50_ms": summary["p50_ms"], "p90_ms": summary["p90_ms"], "p99_ms": summary["p99_ms"],
            "max_ms": summary["max_ms"], "non_2xx": non_2xx, "socket_errors": {}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description="Nexus Chat load benchmark (issue 6)")
    parser.add_argument("--only", help=f"comma-separated scenarios out of: {','.join(SCENARIOS)}")
    parser.add_argument("--quick", action="store_true", help="short steps, for development")
    parser.add_argument("--out", default=str(BENCH_DIR / "results" / "latest.json"),
                        help="where to write the JSON (default bench/results/latest.json)")
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes (default 2)")
    parser.add_argument("--idle-big", type=int, default=idle.BIG_LEVEL, metavar="N",
                        help=f"sockets of idle-conns' last level, alive through two ping intervals "
                             f"(default {idle.BIG_LEVEL:,}; 0 skips it)")
    parser.add_argument("--backend", default=DEFAULT_BACKEND, choices=("aiohttp", "websockets"),
                        help="WebSocket library of the Socket.IO load client")
    parser.add_argument("--budget", type=float, default=BUDGET_S,
                        help=f"soft time budget in seconds (default {BUDGET_S:.0f}; 0: none)")
    parser.add_argument("--profile", metavar="DIR",
                        help="sample the server with py-spy during each scenario into DIR (not for figures)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (server logs)")
    args = parser.parse_args(argv)
    bench = Bench(args)
    report = asyncio.run(asyncio.wait_for(bench.run(), timeout=900))
    if all("error" not in r for r in report["results"]) and not args.keep:
        shutil.rmtree(bench.workdir, ignore_errors=True)
    else:
        print(f"server logs kept in {bench.workdir}", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(report["table_md"] + "\n")
    print(json.dumps({"meta": report["meta"], "summary": [
        {"scenario": r["scenario"], "target": r["target"], "result": summary_text(r)} for r in report["results"]]},
        indent=2))
    print()
    print(report["table_md"])
    print(f"\nfull results: {out}", file=sys.stderr)
    return 0 if all("error" not in r for r in report["results"]) else 1
