"""Concurrent lookups by key, read together: one database round trip for many callers.

While one read is in flight, the keys asked for meanwhile wait and are then read by the
next one, all together (``WHERE id IN (…)``). An idle server reads at once, as before; under a
burst (a connect storm after a restart) the batches grow with the load, so the round trips
per caller fall exactly when they cost the most. Every caller still gets a value read after it
asked. The pattern of a group commit, for reads.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """``await get(key)``: the value ``fetch`` found for ``key``, or None when it found none.

    ``fetch(keys)`` reads up to ``max_batch`` distinct keys and returns what it found by key;
    when it raises, every caller of that batch gets the exception."""

    def __init__(self, fetch: Callable[[list[K]], Awaitable[dict[K, V]]], max_batch: int = 500) -> None:
        self._fetch = fetch
        self.max_batch = max_batch
        self._waiting: list[tuple[K, asyncio.Future[V | None]]] = []
        self._busy = False
        self._task: asyncio.Task | None = None   # the draining task (held: the loop keeps only weak references)
        self.batches = 0   # reads made (tests and metrics)

    async def get(self, key: K) -> V | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        self._waiting.append((key, future))
        if not self._busy:
            self._busy = True
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._take()
                keys = list(dict.fromkeys(key for key, _ in batch))
                self.batches += 1
                try:
                    found = await self._fetch(keys)
                except Exception as exc:   # noqa: BLE001 - handed to the callers
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException:   # cancelled (shutdown): nobody is left waiting for ever
                    for _, future in batch + self._waiting:
                        future.cancel()
                    self._waiting = []
                    raise
                for key, future in batch:
                    if not future.done():   # a caller that went away (cancelled) is skipped
                        future.set_result(found.get(key))
        finally:
            self._busy = False
            self._task = None

    def _take(self) -> list[tuple[K, asyncio.Future[V | None]]]:
        """The oldest waiting callers, up to ``max_batch`` distinct keys."""
        keys: set[K] = set()
        for end, (key, _) in enumerate(self._waiting):
            if key not in keys and len(keys) == self.max_batch:
                break
            keys.add(key)
        else:
            end = len(self._waiting)
        batch, self._waiting = self._waiting[:end], self._waiting[end:]
        return batch
