"""One timer for the deadlines of every connection (heartbeats, connect timeouts).

A timer per socket costs a ``TimerHandle`` in the loop's heap (and a heap push and pop per
ping); at 50,000 idle sockets that heap was most of the server's idle work. Here a deadline is
filed under the *tick* it falls in (ticks are ``tick_s`` long) and the loop has at most one
timer, at the first tick that holds one. When a tick comes, one sweep wakes everything filed
under it: ``owner.wake(token)``.

Deadlines are never early and at most one tick (plus however late the loop runs) late.
Nothing is ever removed: an owner whose deadline moved or who is gone ignores a stale wake-up
by its ``token`` (e.g. a counter it bumps when it files a new deadline).
"""
from __future__ import annotations

import heapq
import logging
import math
from typing import Any, Protocol

from tornado.ioloop import IOLoop

log = logging.getLogger("nexus_chat.realtime")


class Sleeper(Protocol):
    def wake(self, token: Any) -> None:
        """Called once the deadline filed with ``token`` has passed."""


class TickWheel:
    __slots__ = ("tick_s", "_slots", "_heap", "_timer", "_timer_slot", "_loop")

    def __init__(self, tick_s: float) -> None:
        self.tick_s = float(tick_s)
        self._slots: dict[int, list[tuple[Sleeper, Any]]] = {}
        self._heap: list[int] = []             # the slots that hold something
        self._timer: object | None = None
        self._timer_slot: int | None = None
        self._loop: IOLoop | None = None

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._slots.values())

    def add(self, when: float, owner: Sleeper, token: Any = None) -> None:
        """Wake ``owner`` with ``token`` once ``when`` (in ``IOLoop.time()``) has passed."""
        slot = math.ceil(when / self.tick_s)
        entries = self._slots.get(slot)
        if entries is None:
            entries = self._slots[slot] = []
            heapq.heappush(self._heap, slot)
            if self._timer_slot is None or slot < self._timer_slot:
                self._arm(slot)
        entries.append((owner, token))

    def _arm(self, slot: int) -> None:
        if self._loop is None:
            self._loop = IOLoop.current()
        if self._timer is not None:
            self._loop.remove_timeout(self._timer)
        self._timer_slot = slot
        self._timer = self._loop.call_at(slot * self.tick_s, self._sweep)

    def _sweep(self) -> None:
        self._timer = self._timer_slot = None
        loop = self._loop
        assert loop is not None
        heap, slots = self._heap, self._slots
        # Wake-ups may file new deadlines, even in a tick that is already due: loop until none is.
        while heap and heap[0] * self.tick_s <= loop.time():
            for owner, token in slots.pop(heapq.heappop(heap)):
                try:
                    owner.wake(token)
                except Exception:   # one broken owner must not stop the others' deadlines
                    log.exception("timer wake-up failed")
        if heap:
            self._arm(heap[0])

    def close(self) -> None:
        """Drop every deadline (server shutdown)."""
        if self._timer is not None and self._loop is not None:
            self._loop.remove_timeout(self._timer)
        self._timer = self._timer_slot = None
        self._slots.clear()
        self._heap.clear()


def tick_for(*periods_ms: int) -> float:
    """A tick short enough for the shortest of these periods (a twentieth of it), between 5 ms
    and 250 ms: pings of a 25 s interval may leave up to 250 ms late, those of the protocol
    suites' 300 ms interval 15 ms late."""
    shortest = min(p for p in periods_ms if p > 0) / 1000 if any(p > 0 for p in periods_ms) else 1.0
    return min(0.25, max(0.005, shortest / 20))
