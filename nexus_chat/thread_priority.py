"""Lower CPU priority for the media pool's worker processes.

They keep a core busy each; on a busy box the scheduler then shares the cores between them and
the event loop, and every request waits its turn. Linux schedules threads one by one, so a
worker can lower its own priority (raise its nice value) and leave the event loop at the
process's. Not for threads of the server process itself: a niced thread descheduled while it
holds the GIL makes the event loop wait for it (the reason the media pool became processes)."""
from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger("nexus_chat.threads")


def lowered_by(niceness: int) -> Callable[[], None]:
    """A ThreadPoolExecutor (or ProcessPoolExecutor: it pickles) ``initializer``: adds
    ``niceness`` to the starting thread's nice value. Not Linux, or not permitted: the thread
    keeps the process's priority."""
    return functools.partial(_lower, niceness)


def _lower(niceness: int) -> None:
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + niceness)
    except (AttributeError, OSError):
        log.debug("pool threads keep the process's CPU priority", exc_info=True)
