"""The threads that process uploaded media (Pillow, the attachment files): bounded so that a
burst of uploads leaves a core to the event loop, as the bcrypt pool does for logins, and
at a lower CPU priority, so that on a busy box the scheduler runs the event loop first."""
from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from .passwords import hashing_threads
from .thread_priority import lowered_by

T = TypeVar("T")
NICENESS = 10     # added to the process's; an upload waits a little, a request does not


class MediaPool:
    def __init__(self, threads: int | None = None) -> None:
        # Pillow releases the GIL while it decodes, resizes and encodes to a file, so N
        # threads keep N cores busy: one fewer than the box has (at least one).
        self.threads = threads or hashing_threads()
        self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="media",
                                            initializer=lowered_by(NICENESS))

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the pool; uploads beyond its threads wait their turn."""
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
