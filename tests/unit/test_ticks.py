"""The deadline wheel of the protocol layer (nexus_chat/realtime/ticks.py): one loop timer
for every session's heartbeat and connect timeout."""
from __future__ import annotations

import asyncio

from tornado.ioloop import IOLoop

from nexus_chat.realtime.ticks import TickWheel, tick_for


class Recorder:
    def __init__(self, loop, wheel=None, refile=None):
        self.loop, self.wheel, self.refile = loop, wheel, refile
        self.woken: list[tuple[object, float]] = []

    def wake(self, token):
        self.woken.append((token, self.loop.time()))
        if self.refile is not None and token == "first":
            self.wheel.add(self.loop.time() - 1.0, self, "again")   # already due: same sweep


def run(coro):
    return asyncio.run(coro)


def test_deadlines_are_never_early_and_come_in_order():
    async def main():
        loop = IOLoop.current()   # the wheel's clock
        wheel = TickWheel(0.01)
        owner = Recorder(loop)
        now = loop.time()
        deadlines = {"c": now + 0.07, "a": now + 0.02, "b": now + 0.045}
        for token, when in deadlines.items():
            wheel.add(when, owner, token)
        await asyncio.sleep(0.2)
        assert [token for token, _ in owner.woken] == ["a", "b", "c"]
        for token, woke_at in owner.woken:
            assert woke_at >= deadlines[token]
        assert len(wheel) == 0
    run(main())


def test_one_loop_timer_for_many_deadlines():
    async def main():
        loop = IOLoop.current()   # the wheel's clock
        before = len(loop.asyncio_loop._scheduled)
        wheel = TickWheel(0.05)
        owners = [Recorder(loop) for _ in range(1000)]
        for i, owner in enumerate(owners):
            wheel.add(loop.time() + 0.05 + (i % 7) * 0.01, owner, i)
        assert len(loop.asyncio_loop._scheduled) - before == 1
        await asyncio.sleep(0.3)
        assert all(len(owner.woken) == 1 for owner in owners)
    run(main())


def test_a_wake_up_may_file_a_deadline_that_is_already_due():
    async def main():
        loop = IOLoop.current()   # the wheel's clock
        wheel = TickWheel(0.01)
        owner = Recorder(loop, wheel, refile=True)
        wheel.add(loop.time() + 0.01, owner, "first")
        await asyncio.sleep(0.1)
        assert [token for token, _ in owner.woken] == ["first", "again"]
    run(main())


def test_a_failing_owner_does_not_stop_the_others():
    class Broken:
        def wake(self, token):
            raise ValueError("boom")

    async def main():
        loop = IOLoop.current()   # the wheel's clock
        wheel = TickWheel(0.01)
        owner = Recorder(loop)
        wheel.add(loop.time() + 0.01, Broken(), 1)
        wheel.add(loop.time() + 0.01, owner, 2)
        await asyncio.sleep(0.1)
        assert [token for token, _ in owner.woken] == [2]
    run(main())


def test_close_drops_every_deadline():
    async def main():
        loop = IOLoop.current()   # the wheel's clock
        wheel = TickWheel(0.01)
        owner = Recorder(loop)
        wheel.add(loop.time() + 0.02, owner, 1)
        wheel.close()
        await asyncio.sleep(0.08)
        assert owner.woken == [] and len(wheel) == 0
    run(main())


def test_tick_follows_the_shortest_period_within_bounds():
    assert tick_for(25_000, 20_000) == 0.25
    assert tick_for(300, 200) == 0.01
    assert tick_for(10, 10) == 0.005
