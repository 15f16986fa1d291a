"""The threads that process uploaded media (Pillow, the attachment files): bounded so that a
burst of uploads leaves a core to the event loop, as the bcrypt pool does for logins, and
at a lower CPU priority, so that on a busy box the scheduler runs the event loop first."""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from .passwords import hashing_threads

T = TypeVar("T")
NICENESS = 10     # added to the process's; an upload waits a little, a request does not

log = logging.getLogger("nexus_chat.media")


def _lower_priority() -> None:
    """Runs in each pool thread as it starts. Linux schedules threads one by one, so this
    leaves the event loop's thread at the process's priority."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + NICENESS)
    except (AttributeError, OSError):   # not Linux, or not permitted: same priority then
        log.debug("media threads keep the process's CPU priority", exc_info=True)


class MediaPool:
    def __init__(self, threads: int | None = None) -> None:
        # Pillow releases the GIL while it decodes, resizes and encodes to a file, so N
        # threads keep N cores busy: one fewer than the box has (at least one).
        self.threads = threads or hashing_threads()
        self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="media",
                                            initializer=_lower_priority)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the pool; uploads beyond its threads wait their turn."""
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
