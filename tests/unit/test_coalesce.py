"""Coalesced lookups (nexus_chat/coalesce.py): the keys asked for while a read is in flight
are read together by the next one."""
from __future__ import annotations

import asyncio

import pytest

from nexus_chat.coalesce import Coalescer


class Store:
    def __init__(self, data, fail=False):
        self.data, self.fail = data, fail
        self.reads: list[list[str]] = []
        self.gate = asyncio.Event()

    async def fetch(self, keys):
        self.reads.append(list(keys))
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("database gone")
        return {k: self.data[k] for k in keys if k in self.data}


def test_callers_arriving_during_a_read_share_the_next_one():
    async def main():
        store = Store({"a": 1, "b": 2, "c": 3})
        lookups = Coalescer(store.fetch)
        first = asyncio.ensure_future(lookups.get("a"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        rest = [asyncio.ensure_future(lookups.get(k)) for k in ("b", "c", "b", "zz")]
        await asyncio.sleep(0)
        store.gate.set()
        assert await first == 1
        assert await asyncio.gather(*rest) == [2, 3, 2, None]
        assert store.reads == [["a"], ["b", "c", "zz"]]
    asyncio.run(main())


def test_a_failed_read_fails_every_caller_of_its_batch_and_the_next_read_runs():
    async def main():
        store = Store({"a": 1}, fail=True)
        lookups = Coalescer(store.fetch)
        calls = [asyncio.ensure_future(lookups.get(k)) for k in ("a", "b")]
        await asyncio.sleep(0)
        store.gate.set()
        for call in calls:
            with pytest.raises(ConnectionError):
                await call
        store.fail = False
        assert await lookups.get("a") == 1
    asyncio.run(main())


def test_a_caller_that_goes_away_does_not_disturb_the_others():
    async def main():
        store = Store({"a": 1, "b": 2})
        lookups = Coalescer(store.fetch)
        gone = asyncio.ensure_future(lookups.get("a"))
        stays = asyncio.ensure_future(lookups.get("b"))
        await asyncio.sleep(0)
        gone.cancel()
        store.gate.set()
        assert await stays == 2
        assert gone.cancelled()
    asyncio.run(main())


def test_batches_hold_at_most_max_batch_distinct_keys():
    async def main():
        store = Store({str(i): i for i in range(10)})
        store.gate.set()
        lookups = Coalescer(store.fetch, max_batch=4)
        calls = [asyncio.ensure_future(lookups.get(str(i))) for i in range(10)]
        assert await asyncio.gather(*calls) == list(range(10))
        assert [len(r) for r in store.reads] == [4, 4, 2]
    asyncio.run(main())
