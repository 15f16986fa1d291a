"""The database gate hands freed connections to waiters in arrival order."""
from __future__ import annotations

import asyncio

import pytest

from nexus_chat.db import FairGate


@pytest.mark.gen_test
async def test_freed_slots_go_to_the_oldest_waiter_not_to_a_newcomer():
    gate = FairGate(1)
    order: list[str] = []
    await gate.acquire()

    async def worker(name: str) -> None:
        async with gate.slot():
            order.append(name)
            await asyncio.sleep(0)

    first = asyncio.ensure_future(worker("waited-1"))
    second = asyncio.ensure_future(worker("waited-2"))
    await asyncio.sleep(0)
    gate.release()
    late = asyncio.ensure_future(worker("newcomer"))  # arrives after the slot was freed
    await asyncio.gather(first, second, late)
    assert order == ["waited-1", "waited-2", "newcomer"]


@pytest.mark.gen_test
async def test_a_cancelled_waiter_does_not_lose_the_slot():
    gate = FairGate(1)
    await gate.acquire()
    cancelled = asyncio.ensure_future(gate.acquire())
    waiting = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    cancelled.cancel()
    gate.release()
    await asyncio.wait_for(waiting, 1)
    gate.release()
    await asyncio.wait_for(gate.acquire(), 1)  # the slot came back
