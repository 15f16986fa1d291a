"""The bcrypt and media pools' threads run below the event loop's priority (thread_priority.py)."""
import os
import sys
import threading

import pytest

from nexus_chat.media_pool import MediaPool
from nexus_chat.passwords import PasswordHasher


def _nice_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
@pytest.mark.parametrize("make, raised_by", [(lambda: PasswordHasher(rounds=4), 5), (lambda: MediaPool(1), 10)],
                         ids=["bcrypt", "media"])
def test_pool_threads_are_niced_and_the_calling_thread_is_not(make, raised_by):
    before = _nice_of_this_thread()
    pool = make()
    try:
        seen = pool._executor.submit(_nice_of_this_thread).result(timeout=10)
    finally:
        pool.close()
    assert seen == min(19, before + raised_by)
    assert _nice_of_this_thread() == before
