"""`python -m bench.probe URL TOKEN RATE`: GET URL with the bearer TOKEN at RATE per second,
open loop, until standard input closes; then print one JSON line with the latency summary.

A separate process, so that the load the scenario generates (e.g. 100 uploads of 3 MB from
one event loop) does not delay the probe's own requests and show up as server latency."""
from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp

from .common import latency_summary


async def probe(url: str, token: str, rate: float) -> dict:
    loop = asyncio.get_running_loop()
    stop = loop.run_in_executor(None, sys.stdin.read)   # returns at EOF
    latencies: list[float] = []
    errors = 0
    tasks = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256),
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def one(due: float) -> None:
            nonlocal errors
            try:
                async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                    await resp.read()
                    errors += resp.status != 200
            except Exception:  # noqa: BLE001 - counted
                errors += 1
            latencies.append(time.monotonic() - due)

        t0, i = time.monotonic(), 0
        while not stop.done():
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(one(due)))
            i += 1
        await asyncio.wait(tasks, timeout=60)
    return {**latency_summary(latencies), "errors": errors, "rate": rate}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(probe(sys.argv[1], sys.argv[2], float(sys.argv[3])))), flush=True)
