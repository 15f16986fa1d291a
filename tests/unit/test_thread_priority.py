"""The media pool's workers run below the event loop's priority (thread_priority.py); bcrypt's
threads do not (a niced thread holding the GIL would stall the loop)."""
import os
import sys
import threading

import pytest

from nexus_chat.media_pool import MediaPool
from nexus_chat.passwords import PasswordHasher


def _nice_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
@pytest.mark.parametrize("make, raised_by", [(lambda: PasswordHasher(rounds=4), 0), (lambda: MediaPool(1), 10)],
                         ids=["bcrypt", "media"])
def test_pool_workers_run_at_their_priority_and_the_caller_keeps_its_own(make, raised_by):
    before = _nice_of_this_thread()
    pool = make()
    try:
        seen = pool._executor.submit(_nice_of_this_thread).result(timeout=10)
    finally:
        pool.close()
    assert seen == min(19, before + raised_by)
    assert _nice_of_this_thread() == before
