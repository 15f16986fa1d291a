"""Scenario `recovery` (bench/runner.py): 1,000 sockets of a server with connection-state
recovery on drop at once while messages are sent to their users, then all reconnect at once
with their pid. Reports how long until every socket is back (same pid: recovered), how many
missed events were replayed, and the replay rate.

One process holds the 1,000 raw clients (bench/sio.py); the sender is one more socket.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import aiohttp

from .sio import SioClient

if TYPE_CHECKING:
    from .runner import Bench

SOCKETS = 1000
MISSED_PER_USER = 3     # messages each user gets while away (every socket of the user misses them)


async def run(bench: Bench) -> None:
    users = bench.users
    receivers = users[1:]
    sender = users[0]
    url = bench.server.url
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=None, sock_connect=60)) as session:
        sem = asyncio.Semaphore(64)
        plan = [receivers[i % len(receivers)] for i in range(SOCKETS)]

        async def connect(user, auth=None) -> SioClient:
            async with sem:
                client = SioClient("aiohttp")
                await client.connect(url, user.token, session, timeout=60, auth=auth)
                return client
        clients = await asyncio.gather(*(connect(u) for u in plan))
        pids = [c.pid for c in clients]
        if not all(pids):
            raise RuntimeError("the server answered CONNECT without a pid: is realtime.recovery on?")
        await asyncio.gather(*(c.close() for c in clients))            # the network goes away
        await asyncio.sleep(1.0)                                        # the server notices
        out = await connect(sender)
        for _ in range(MISSED_PER_USER):
            for user in receivers:
                ack = await out.call("sendMessage", {"recipientId": user.id, "content": "while you were away"})
                if not isinstance(ack, list) or not ack or "id" not in ack[0]:
                    raise RuntimeError(f"send failed: {str(ack)[:200]}")
        await out.close()
        expected = MISSED_PER_USER * SOCKETS
        replayed = [0] * SOCKETS
        back = [0.0] * SOCKETS
        t0 = time.monotonic()

        async def recover(i: int) -> SioClient:
            client = SioClient("aiohttp")

            def count(_payload: str, i=i) -> None:
                replayed[i] += 1
                if replayed[i] == MISSED_PER_USER:
                    back[i] = time.monotonic() - t0
            client.on_message = count
            async with sem:
                await client.connect(url, plan[i].token, session, timeout=60,
                                     auth={"token": plan[i].token, "pid": pids[i]})
            return client
        m = bench.meter()
        again = await asyncio.gather(*(recover(i) for i in range(SOCKETS)))
        deadline = time.monotonic() + 60
        while sum(replayed) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - t0
        cpu = m.stop()
        recovered = sum(1 for c, pid in zip(again, pids) if c.pid == pid)
        await asyncio.gather(*(c.close() for c in again))
    done = [b for b in back if b]
    bench.add({"scenario": "recovery", "sockets": SOCKETS, "recovered": recovered,
               "replayed": sum(replayed), "expected": expected, "all_back_s": round(elapsed, 2),
               "replayed_per_s": round(sum(replayed) / elapsed, 1) if elapsed else None,
               "p50_back_s": round(sorted(done)[len(done) // 2], 2) if done else None,
               "cpu": cpu, "ok": recovered == SOCKETS and sum(replayed) == expected})
