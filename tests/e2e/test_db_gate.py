"""The database gate hands freed connections to waiters in arrival order."""
from __future__ import annotations

import asyncio
import warnings

import aiomysql
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



@pytest.mark.gen_test
async def test_expected_server_warnings_neither_cost_a_round_trip_nor_raise(runtime):
    """An INSERT IGNORE of a duplicate leaves a server warning. The pool's cursors skip
    aiomysql's SHOW WARNINGS for it (no extra round trip) and raise no Python warning, with
    no global warnings filter: here every warning is an error."""
    assert callable(getattr(aiomysql.Cursor, "_show_warnings", None))   # the hook overridden
    async with runtime.db.transaction() as tx:
        await tx.execute("CREATE TEMPORARY TABLE warned (id INT PRIMARY KEY)")
        await tx.execute("INSERT INTO warned VALUES (1)")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert await tx.execute("INSERT IGNORE INTO warned VALUES (1)") == 0
        row = await tx.fetch_one("SHOW COUNT(*) WARNINGS")
    assert row["@@session.warning_count"] == 1     # the server did warn
