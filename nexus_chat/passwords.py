"""bcrypt in a bounded thread pool, so hashing never runs on (or starves) the event loop."""
from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import bcrypt

MAX_PASSWORD_BYTES = 72  # bcrypt's limit; bcrypt >= 5 raises past it


def hashing_threads() -> int:
    # bcrypt releases the GIL, so N threads use N cores. Keep one core for the event loop.
    return max(1, (os.cpu_count() or 2) - 1)


class PasswordHasher:
    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        # At the process's priority: a niced thread can be descheduled while it holds the GIL
        # (taking or returning a hash), and the event loop then waits for it (media_pool.py).
        self._executor = ThreadPoolExecutor(max_workers=hashing_threads(), thread_name_prefix="bcrypt")
        # A fixed hash to compare against when the account does not exist, so a login for an
        # unknown e-mail costs the same time as one for a known e-mail.
        self._dummy = bcrypt.hashpw(b"timing-equaliser", bcrypt.gensalt(rounds)).decode()

    async def hash(self, password: str) -> str:
        data = password.encode()
        loop = asyncio.get_running_loop()
        hashed = await loop.run_in_executor(self._executor, bcrypt.hashpw, data, bcrypt.gensalt(self.rounds))
        return hashed.decode()

    async def verify(self, password: str, hashed: str | None) -> bool:
        data = password.encode()
        if len(data) > MAX_PASSWORD_BYTES:
            return False
        loop = asyncio.get_running_loop()
        target = (hashed or self._dummy).encode()
        try:
            ok = await loop.run_in_executor(self._executor, bcrypt.checkpw, data, target)
        except ValueError:
            return False
        return ok and hashed is not None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
