"""Group commit for new messages: concurrent sends share one multi-row INSERT.

Every ``sendMessage`` used to cost its own INSERT round trip, and at a few thousand messages a
second the round trips (each ~150 µs of client CPU in the pure-Python driver, plus taking and
returning a pooled connection) were most of the server's work. Here ``MessageWriter.write``
queues a message and waits; a flush takes what is queued (up to ``MAX_BATCH`` rows) and stores
it with one autocommitted ``INSERT … VALUES (…), (…), …``. Each caller returns only after the
statement that stored its row has committed (ack after commit).

Window. A flush starts on the event-loop iteration after a message is queued, so every send
read in that iteration joins it, and while a flush waits for MariaDB the next batch fills:
batches grow with the load by themselves, and an idle server adds no delay. The setting
``chat.group_commit_window_ms`` (``window_s``, default 0) also spaces the starts of flushes at
least that far apart: under load a message then waits up to one window more, for larger batches
(fewer round trips per message); the first message after a quiet spell still goes at once.

One flush at a time. A flush that has not finished after ``STUCK_S`` (its INSERT waits for a
row lock: a parent row of a message, e.g. its sender's, locked by another transaction) no
longer holds the others back: a second one starts beside it with the rest of the queue.

Order. A conversation's or group's messages are never in two flushes at once, and within a
flush rows are written in queue order, so they get their ``seq`` (commit order) in the order
they were sent. The callers of a flush are resumed in queue order; a caller that publishes its
event with no ``await`` between ``write`` returning and ``ctx.events.publish`` hands it to the
event log before the chat's next message can commit. Sends therefore need no lock.

Failures stay per message. A duplicate (sender, clientMessageId) — also one repeated inside a
batch — or a vanished conversation, group or sender makes the multi-row statement fail as a
whole; the flush then writes that batch's rows one by one, so each caller gets its own row's
IntegrityError (as with a single INSERT) and the others are stored. The same on a deadlock or
lock-wait timeout. Any other error (the database is down) is every caller's error.

Messages with work of their own in the same transaction (claiming attachments) are written
alone, in their place in the batch: BEGIN, INSERT, the work, COMMIT; the work raising rolls
back that message only.

The event-log rows are not written here (docs/architecture.md#how-an-event-flows): the event
log remains the one writer of offsets per process, which is what keeps offsets in commit
order; it appends the events a flush releases in one transaction right after.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pymysql

from .db import Database, Executor, is_contention
from .queries import chat as chat_queries

# Rows per INSERT. A message holds at most 5,000 characters (20 KB in utf8mb4): 200 of them
# stay far below MariaDB's default max_allowed_packet (16 MiB).
MAX_BATCH = 200
# A flush running longer than this waits for a lock: the next one may start beside it.
STUCK_S = 0.05

InTransaction = Callable[[Executor], Awaitable[Any]]


@dataclass(frozen=True)
class NewMessage:
    """One row of ``messages``."""

    message_id: str
    conversation_id: str | None
    group_id: str | None
    sender_id: str
    content: str
    client_message_id: str | None
    reply_to_id: str | None
    created_at: dt.datetime
    # Run in the message's own transaction after its INSERT (attachments); what it returns is
    # what ``write`` returns, and its exception rolls the message back.
    then: InTransaction | None = None

    def values(self) -> tuple:
        return (self.message_id, self.conversation_id, self.group_id, self.sender_id, self.content,
                self.client_message_id, self.reply_to_id, self.created_at)

    @property
    def chat(self) -> str:
        return self.conversation_id or self.group_id or ""


@dataclass
class _Queued:
    message: NewMessage
    done: asyncio.Future


@dataclass
class _Flush:
    chats: set[str]
    started: float
    task: asyncio.Task | None = None
    stuck: asyncio.TimerHandle | None = None


class MessageWriter:
    def __init__(self, db: Database, window_s: float = 0.0) -> None:
        self.db = db
        self.window_s = window_s
        self._queue: list[_Queued] = []
        self._flushes: list[_Flush] = []
        self._starting: asyncio.Handle | None = None
        self._last_start = float("-inf")
        self.batches = 0          # flushes started, and their largest batch (tests, metrics)
        self.largest_batch = 0

    async def write(self, message: NewMessage) -> Any:
        """Stores the message; returns once it is committed (with what ``then`` returned).
        Raises what a single INSERT of this row would have raised."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._queue.append(_Queued(message, done))
        if self._starting is None:   # on the next iteration, with whatever else arrives in this one
            self._starting = loop.call_soon(self._start)
        return await done

    async def stop(self) -> None:
        """Waits until everything queued is written (shutdown, before the pool closes)."""
        while self._flushes or self._starting is not None:
            tasks = [f.task for f in self._flushes if f.task is not None]
            await asyncio.wait(tasks) if tasks else await asyncio.sleep(0.01)

    # ---- scheduling -----------------------------------------------------------------------------
    def _start(self) -> None:
        self._starting = None
        self._schedule()

    def _schedule(self) -> None:
        """Starts a flush of what is queued, unless one is running and not stuck (its end calls
        this again), or the window since the last one has not passed (a timer calls it then)."""
        if not self._queue or self._starting is not None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if any(now - flush.started < STUCK_S for flush in self._flushes):
            return
        wait = self._last_start + self.window_s - now
        if wait > 0:
            self._starting = loop.call_later(wait, self._start)
            return
        busy = set().union(*(flush.chats for flush in self._flushes))
        batch: list[_Queued] = []
        kept: list[_Queued] = []
        for queued in self._queue:
            if len(batch) < MAX_BATCH and queued.message.chat not in busy:
                batch.append(queued)
            else:
                kept.append(queued)   # behind its chat's flush, or for the next one
        if not batch:
            return
        self._queue = kept
        self._last_start = now
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        flush = _Flush({queued.message.chat for queued in batch}, now)
        flush.stuck = loop.call_later(STUCK_S, self._schedule)
        flush.task = loop.create_task(self._run(flush, batch))
        self._flushes.append(flush)

    async def _run(self, flush: _Flush, batch: list[_Queued]) -> None:
        try:
            await self._write(batch)
        finally:
            flush.stuck.cancel()
            self._flushes.remove(flush)
            self._schedule()   # what queued meanwhile, at once

    # ---- writing --------------------------------------------------------------------------------
    async def _write(self, batch: list[_Queued]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        plain: list[_Queued] = []
        try:
            for queued in batch:
                if queued.message.then is None:
                    plain.append(queued)
                    continue
                outcomes += await self._insert(plain)
                plain = []
                outcomes.append(await self._insert_with_work(queued.message))
            outcomes += await self._insert(plain)
        except BaseException as exc:   # a bug or cancellation: fail whoever is still waiting
            for queued in batch:
                if not queued.done.done():
                    queued.done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            raise
        # Resumed in queue order, so their events reach the event log in commit order.
        for queued, (ok, value) in zip(batch, outcomes):
            if queued.done.done():
                continue
            if ok:
                queued.done.set_result(value)
            else:
                queued.done.set_exception(value)

    async def _insert(self, run: list[_Queued]) -> list[tuple[bool, Any]]:
        """One autocommitted multi-row INSERT; row by row when one row fails it."""
        if not run:
            return []
        try:
            await chat_queries.insert_messages(self.db, [q.message.values() for q in run])
            return [(True, None)] * len(run)
        except Exception as exc:
            if len(run) == 1 or not _one_row_may_be_at_fault(exc):
                return [(False, exc)] * len(run)
        outcomes = []
        for queued in run:
            try:
                await chat_queries.insert_messages(self.db, [queued.message.values()])
                outcomes.append((True, None))
            except Exception as exc:
                outcomes.append((False, exc))
        return outcomes

    async def _insert_with_work(self, message: NewMessage) -> tuple[bool, Any]:
        try:
            async with self.db.transaction() as tx:
                await chat_queries.insert_messages(tx, [message.values()])
                result = await message.then(tx)
            return True, result
        except Exception as exc:
            return False, exc


def _one_row_may_be_at_fault(exc: BaseException) -> bool:
    """A row's own problem (duplicate key, missing parent …) or contention: retrying the rows
    one by one finds which, and stores the rest. Not for an unreachable database."""
    return isinstance(exc, pymysql.err.IntegrityError) or is_contention(exc)
