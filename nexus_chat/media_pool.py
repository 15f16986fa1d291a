"""The worker processes that check uploaded media (Pillow, the attachment files): bounded so
that a burst of uploads leaves a core to the event loop, as the bcrypt pool does for logins,
and at a lower CPU priority, so that on a busy box the scheduler runs the event loop first.

Processes, not threads. Pillow releases the GIL inside its C loops, but between them (opening
a file, reading EXIF, building the thumbnail's pipeline) a worker runs Python with the GIL
held; at nice +10 on a busy box the scheduler may stop it right there, and the event loop,
which needs the GIL for every callback, waits for a thread that is not running: measured
during 100 concurrent photo uploads, callbacks that used 0.1-0.3 ms of CPU took 10-48 ms.
A worker process has a GIL of its own. Nothing large crosses the process boundary: an upload
is a temporary file on disk (spool.py) and the worker writes the results next to it.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, TypeVar

from .errors import ApiError
from .passwords import hashing_threads
from .thread_priority import lowered_by

log = logging.getLogger("nexus_chat.media")
T = TypeVar("T")
NICENESS = 10     # added to the process's; an upload waits a little, a request does not


class MediaPool:
    def __init__(self, workers: int | None = None) -> None:
        # One fewer than the box has cores (at least one): Pillow keeps a core busy per worker.
        self.workers = workers or hashing_threads()
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn: a fork of a process running an event loop and threads could inherit a lock
        # held by one of them. Workers start on the first upload and stay.
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=lowered_by(NICENESS))

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker (all of them picklable: a module-level function
        and plain values); uploads beyond the workers wait their turn."""
        call = functools.partial(fn, *args, **kwargs)
        for attempt in range(2):
            executor = self._executor
            try:
                return await asyncio.get_running_loop().run_in_executor(executor, call)
            except BrokenProcessPool:
                # A worker died (killed, out of memory, a crash inside Pillow): the pool is
                # unusable from then on, so a fresh one takes its place and the call is tried
                # once more there; a file that kills that one too is refused.
                log.warning("a media worker process died; the pool is restarted")
                if self._executor is executor:
                    executor.shutdown(wait=False, cancel_futures=True)
                    self._executor = self._start()
        raise ApiError(400, "Validation failed", ["file: The file could not be processed."])

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
