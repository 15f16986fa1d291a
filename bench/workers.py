"""Load-generator worker processes: each runs an asyncio loop holding Socket.IO clients and
obeys commands from the parent over a pipe (connect, run a DM step, run a group step, check
idle sockets, close). The parent shards sockets across workers so that one generator core is
not the limit; every command is bounded in time.
"""
from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import time
import traceback
from array import array

import orjson

from .common import raise_nofile
from .sio import DEFAULT_BACKEND, SioClient


def _is_error(body: str) -> bool:
    return '"success":false' in body[:60]



def delivery_handler(prefix: str, seen: bytearray, counters: dict, count_key: str, latencies: array,
                     t_start: float, inv_rate: float, on_new=None, own: tuple[int, int] | None = None):
    """A client's `message` callback: parse `<tag>|<seq> …`, drop foreign and duplicate
    deliveries, and record the latency from when message ``seq`` was due. ``own`` = (n, k):
    this client sent the messages whose seq % n == k; the copies of them it gets are not counted."""
    monotonic = time.monotonic
    loads = orjson.loads

    def on_message(payload: str) -> None:
        content = loads(payload).get("content", "")
        if not content.startswith(prefix):
            counters["foreign"] += 1
            return
        seq = int(content[len(prefix):].split(" ", 1)[0])
        if own is not None and seq % own[0] == own[1]:
            return
        if seen[seq]:
            counters["dup"] += 1
            return
        seen[seq] = 1
        if on_new is not None:
            on_new(seq)
        counters[count_key] += 1
        latencies.append(monotonic() - (t_start + seq * inv_rate))
    return on_message

class LoopLag:
    """How late this worker's event loop ran a 5 ms timer at worst while it runs: a late
    client delays every delivery it reads, so a step's latency is the server's only when
    this stays small."""

    PERIOD_S = 0.005

    def __init__(self) -> None:
        self.worst = 0.0
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        monotonic = time.monotonic
        while True:
            due = monotonic() + self.PERIOD_S
            await asyncio.sleep(self.PERIOD_S)
            self.worst = max(self.worst, monotonic() - due)

    def stop(self) -> float:
        self._task.cancel()
        return self.worst


class Worker:
    def __init__(self, conn, wid: int, backend: str) -> None:
        self.conn = conn
        self.wid = wid
        self.backend = backend
        self.clients: dict[str, SioClient] = {}
        self.session = None
        self.bound_sessions: dict[str, object] = {}   # source address -> aiohttp session bound to it

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                cmd, kwargs = await loop.run_in_executor(None, self.conn.recv)
            except (EOFError, OSError):
                break
            if cmd == "exit":
                await self.cmd_close_all()
                self.conn.send({"ok": True})
                break
            try:
                result = await getattr(self, "cmd_" + cmd)(**kwargs)
            except Exception:
                result = {"error": traceback.format_exc()}
            self.conn.send(result)
        if self.session is not None:
            await self.session.close()
        for bound in self.bound_sessions.values():
            await bound.close()

    async def _session(self, source: str | None = None):
        if source is not None:   # connections from this loopback address (each has its own ports)
            import aiohttp
            if source not in self.bound_sessions:
                self.bound_sessions[source] = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0, force_close=True, local_addr=(source, 0)),
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=30))
            return self.bound_sessions[source]
        if self.session is None and self.backend == "aiohttp":
            import aiohttp
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=True),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30))
        return self.session

    async def cmd_pid(self) -> dict:
        return {"pid": os.getpid()}

    # ------------------------------------------------------------------ connect / close
    async def cmd_connect(self, url: str, tokens: list, concurrency: int = 64, timeout: float = 60.0,
                          start_at: float = 0.0, source: str | None = None) -> dict:
        """``source``: a loopback address to connect from (aiohttp backend), for more sockets
        than one address has ephemeral ports (~28,000)."""
        session = await self._session(source)
        sem = asyncio.Semaphore(concurrency)
        errors: list[str] = []
        ok = 0
        if start_at:
            await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        t_start = time.monotonic()
        deadline = t_start + timeout

        async def one(key: str, token: str, to: str | None = None) -> None:
            nonlocal ok
            async with sem:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    errors.append("connect deadline passed")
                    return
                client = SioClient(self.backend)
                try:
                    await client.connect(to or url, token, session, timeout=min(30.0, remaining))
                except Exception as exc:  # noqa: BLE001 - report, do not crash
                    errors.append(repr(exc)[:200])
                    await client.close()
                    return
                self.clients[key] = client
                ok += 1

        # (key, token) or (key, token, url): a socket for another server (cluster-* scenarios)
        await asyncio.gather(*(one(*item) for item in tokens))
        t_end = time.monotonic()
        return {"ok": ok, "failed": len(tokens) - ok, "errors": errors[:5], "t_start": t_start,
                "t_end": t_end}

    async def cmd_close_all(self, keys: list | None = None) -> dict:
        keys = list(self.clients) if keys is None else keys
        clients = [self.clients.pop(k) for k in keys if k in self.clients]
        sem = asyncio.Semaphore(200)

        async def one(c: SioClient) -> None:
            async with sem:
                await c.close()
        await asyncio.gather(*(one(c) for c in clients))
        return {"closed": len(clients)}

    # ------------------------------------------------------------------ idle
    async def cmd_idle_mark(self) -> dict:
        self._marks = {k: c.pings for k, c in self.clients.items()}
        return {"n": len(self._marks)}

    async def cmd_limits(self) -> dict:
        import resource
        return {"nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}

    async def cmd_idle_check(self) -> dict:
        alive = pinged = pinged_twice = 0
        reasons: dict[str, int] = {}
        for k, c in self.clients.items():
            if c.closed:
                reasons[c.close_reason] = reasons.get(c.close_reason, 0) + 1
                continue
            alive += 1
            if c.pings > self._marks.get(k, 0):
                pinged += 1
            if c.pings >= self._marks.get(k, 0) + 2:
                pinged_twice += 1
        return {"n": len(self.clients), "alive": alive, "pinged": pinged, "pinged_twice": pinged_twice,
                "closed": reasons}

    # ------------------------------------------------------------------ 1-on-1 messages
    async def cmd_dm_step(self, tag: str, pairs: list, rate: float, duration: float, t_start: float,
                          drain_s: float = 5.0) -> dict:
        """Open loop: message ``seq`` is due at t_start + seq/rate, sent by one side of pair
        (seq // 2) % len(pairs); latencies are measured from that due time (no coordinated
        omission). ``pairs``: (keyA, userIdA, keyB, userIdB)."""
        total = int(rate * duration)
        slots = []  # (sender client, recipient user id)
        for key_a, uid_a, key_b, uid_b in pairs:
            slots.append((self.clients[key_a], uid_b))
            slots.append((self.clients[key_b], uid_a))
        n_slots = len(slots)
        acked = bytearray(total)
        delivered = bytearray(total)
        ack_lat = array("d")
        del_lat = array("d")
        counters = {"ack_errors": 0, "dup": 0, "foreign": 0, "acked": 0, "delivered": 0}
        error_samples: list[str] = []
        ackmaps: dict[int, dict[int, int]] = {}
        prefix = tag + "|"
        inv_rate = 1.0 / rate
        monotonic = time.monotonic

        def make_on_ack(amap: dict[int, int]):
            def on_ack(ack_id: int, body: str) -> None:
                seq = amap.pop(ack_id, None)
                if seq is None:
                    return
                if _is_error(body):
                    counters["ack_errors"] += 1
                    if len(error_samples) < 3:
                        error_samples.append(body[:200])
                    return
                if not acked[seq]:
                    acked[seq] = 1
                    counters["acked"] += 1
                    ack_lat.append(monotonic() - (t_start + seq * inv_rate))
            return on_ack

        on_message = delivery_handler(prefix, delivered, counters, "delivered", del_lat, t_start, inv_rate)

        for client, _ in slots:
            amap: dict[int, int] = {}
            ackmaps[id(client)] = amap
            client.on_ack = make_on_ack(amap)
            client.on_message = on_message

        await asyncio.sleep(max(0.0, t_start - monotonic()))
        sent = 0
        lag_max = 0.0
        end_by = t_start + duration + 2.0  # the send loop itself is bounded
        while sent < total:
            now = monotonic()
            if now > end_by:
                break
            due = min(total, int((now - t_start) * rate) + 1)
            if due > sent:
                lag_max = max(lag_max, now - (t_start + sent * inv_rate))
            while sent < due:
                client, recipient = slots[(sent // 2 * 2 + sent % 2) % n_slots]
                if not client.closed:
                    ack_id = await client.emit("sendMessage", {"recipientId": recipient,
                                                               "content": f"{prefix}{sent} bench"})
                    ackmaps[id(client)][ack_id] = sent
                sent += 1
            next_due = t_start + sent * inv_rate
            await asyncio.sleep(max(0.0, min(next_due - monotonic(), 0.01)))
        # wait for the stragglers, bounded
        drain_until = monotonic() + drain_s
        while monotonic() < drain_until and (counters["acked"] + counters["ack_errors"] < sent
                                             or counters["delivered"] < sent):
            await asyncio.sleep(0.02)
        for client, _ in slots:
            client.on_ack = None
            client.on_message = None
        closed = sum(1 for c, _ in slots if c.closed)
        return {"planned": total, "sent": sent, "acked": counters["acked"],
                "delivered": counters["delivered"], "ack_errors": counters["ack_errors"],
                "dup": counters["dup"], "foreign": counters["foreign"], "error_samples": error_samples,
                "lag_max_s": lag_max, "closed_sockets": closed,
                "ack_lat": ack_lat.tobytes(), "del_lat": del_lat.tobytes()}

    # ------------------------------------------------------------------ group fan-out
    async def cmd_group_step(self, tag: str, group_id: str, senders: list, n_senders: int, receivers: list,
                             rate: float, duration: float, t_start: float, drain_s: float = 5.0) -> dict:
        """``n_senders`` members post to the group at ``rate`` together: message ``seq`` is due at
        t_start + seq/rate and sent by sender ``seq % n_senders``; ``senders`` are the
        ([key, index]) of those in this worker. Every worker counts what its ``receivers`` get
        (a sender is a receiver too, of everyone's messages but its own). Latency of a delivery
        (and of an ack) = arrival - due time of the message."""
        total = int(rate * duration)
        counts = array("H", bytes(2 * total))
        del_lat = array("d")
        ack_lat = array("d")
        counters = {"deliveries": 0, "dup": 0, "foreign": 0, "acked": 0, "ack_errors": 0}
        error_samples: list[str] = []
        prefix = tag + "|"
        inv_rate = 1.0 / rate
        monotonic = time.monotonic
        index_of = {key: index for key, index in senders}
        own_count = [len(range(index, total, n_senders)) for index in range(n_senders)]
        expected_local = sum(total - (own_count[index_of[key]] if key in index_of else 0) for key in receivers)

        def count(seq: int) -> None:
            counts[seq] += 1

        for key in receivers:  # each receiver has its own duplicate filter
            own = (n_senders, index_of[key]) if key in index_of else None
            self.clients[key].on_message = delivery_handler(
                prefix, bytearray(total), counters, "deliveries", del_lat, t_start, inv_rate, on_new=count,
                own=own)

        acked = bytearray(total)
        amaps: dict[str, dict[int, int]] = {}

        def make_on_ack(amap: dict[int, int]):
            def on_ack(ack_id: int, body: str) -> None:
                seq = amap.pop(ack_id, None)
                if seq is None:
                    return
                if _is_error(body):
                    counters["ack_errors"] += 1
                    if len(error_samples) < 3:
                        error_samples.append(body[:200])
                elif not acked[seq]:
                    acked[seq] = 1
                    counters["acked"] += 1
                    ack_lat.append(monotonic() - (t_start + seq * inv_rate))
            return on_ack

        for key, _ in senders:
            amaps[key] = {}
            self.clients[key].on_ack = make_on_ack(amaps[key])
        by_index = {index: key for key, index in senders}
        mine = [seq for seq in range(total) if seq % n_senders in by_index]   # this worker's messages, in due order

        await asyncio.sleep(max(0.0, t_start - monotonic()))
        probe = LoopLag()
        sent = 0          # of ``mine``
        lag_max = 0.0
        end_by = t_start + duration + 2.0
        while sent < len(mine) and monotonic() < end_by:
            now = monotonic()
            if t_start + mine[sent] * inv_rate <= now:
                lag_max = max(lag_max, now - (t_start + mine[sent] * inv_rate))
            while sent < len(mine) and t_start + mine[sent] * inv_rate <= now:
                seq = mine[sent]
                key = by_index[seq % n_senders]
                client = self.clients[key]
                if not client.closed:
                    ack_id = await client.emit("sendMessage", {"groupId": group_id, "content": f"{prefix}{seq} bench"})
                    amaps[key][ack_id] = seq
                sent += 1
            if sent < len(mine):
                await asyncio.sleep(max(0.0, min(t_start + mine[sent] * inv_rate - monotonic(), 0.01)))
        if not mine:
            await asyncio.sleep(max(0.0, t_start + duration - monotonic()))
        drain_until = max(monotonic(), t_start + duration) + drain_s
        while monotonic() < drain_until:
            done_recv = counters["deliveries"] >= expected_local
            done_ack = counters["acked"] + counters["ack_errors"] >= sent
            if done_recv and done_ack:
                break
            await asyncio.sleep(0.02)
        loop_lag_max = probe.stop()
        for key in receivers:
            self.clients[key].on_message = None
        for key, _ in senders:
            self.clients[key].on_ack = None
        closed = sum(1 for k in receivers if self.clients[k].closed)
        return {"planned": total, "sent": sent, "acked": counters["acked"],
                "ack_errors": counters["ack_errors"], "error_samples": error_samples,
                "deliveries": counters["deliveries"], "dup": counters["dup"],
                "foreign": counters["foreign"], "lag_max_s": lag_max, "closed_sockets": closed,
                "counts": counts.tobytes(), "del_lat": del_lat.tobytes(), "ack_lat": ack_lat.tobytes(),
                "loop_lag_max_s": loop_lag_max, "receivers": len(receivers)}

    # ------------------------------------------------------------------ seeding helper
    async def cmd_send_many(self, key: str, recipient_id: str, count: int, window: int = 32,
                            timeout: float = 120.0, reply_to_ids: list[str] | None = None) -> dict:
        """Send ``count`` messages from one socket with at most ``window`` unacked; wait for acks.
        The i-th replies to ``reply_to_ids[i]`` when given. ``ids``: the stored messages' ids,
        in the order sent."""
        client = self.clients[key]
        sem = asyncio.Semaphore(window)
        failures: list[str] = []
        ids: list[str | None] = [None] * count

        async def one(i: int) -> None:
            payload = {"recipientId": recipient_id, "content": f"history message {i}"}
            if reply_to_ids:
                payload["replyToId"] = reply_to_ids[i]
            async with sem:
                try:
                    body = await client.call("sendMessage", payload)
                    answer = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
                    if answer.get("success") is False:
                        failures.append(str(answer)[:200])
                    else:
                        ids[i] = answer.get("id")   # the ack is the stored Message
                except Exception as exc:  # noqa: BLE001
                    failures.append(repr(exc)[:200])
        t0 = time.monotonic()
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(one(i) for i in range(count)))
        return {"sent": count, "failed": len(failures), "samples": failures[:3], "ids": ids,
                "elapsed_s": time.monotonic() - t0}


def _worker_main(conn, wid: int, backend: str) -> None:
    raise_nofile()
    try:
        asyncio.run(Worker(conn, wid, backend).serve())
    except KeyboardInterrupt:
        pass


class WorkerPool:
    """N worker processes; ``call`` sends one command to each (per-worker kwargs) and returns
    their answers, raising if any worker failed or the deadline passed."""

    def __init__(self, n: int, backend: str = DEFAULT_BACKEND) -> None:
        ctx = mp.get_context("spawn")
        self.conns = []
        self.procs = []
        for wid in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child, wid, backend), daemon=True,
                               name=f"bench-worker-{wid}")
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        self.pids = [p.pid for p in self.procs]
        self.broken = False

    def __len__(self) -> int:
        return len(self.procs)

    def call(self, cmd: str, per_worker: list[dict] | None = None, timeout: float = 120.0,
             **common) -> list[dict]:
        per_worker = per_worker or [{} for _ in self.conns]
        for conn, kw in zip(self.conns, per_worker):
            conn.send((cmd, {**common, **kw}))
        if self.broken:
            raise RuntimeError("the worker pool is broken (a worker did not answer in time)")
        results = []
        deadline = time.monotonic() + timeout
        for conn in self.conns:
            # read every answer, even after an error, so that no stale answer stays in a pipe
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                self.broken = True
                raise TimeoutError(f"worker did not answer {cmd!r} within {timeout} s")
            results.append(conn.recv())
        for res in results:
            if isinstance(res, dict) and "error" in res:
                raise RuntimeError(f"worker failed on {cmd!r}:\n{res['error']}")
        return results

    def close(self) -> None:
        if self.broken:   # a worker may be stuck: do not wait for polite exits
            for proc in self.procs:
                proc.terminate()
        for conn in self.conns:
            try:
                conn.send(("exit", {}))
            except OSError:
                pass
        deadline = time.monotonic() + 10
        for proc in self.procs:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
                proc.join(2)
