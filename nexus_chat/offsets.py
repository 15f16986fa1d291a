"""Positions in the event log that stay exact with several processes (docs/scaling.md#connection-state-recovery).

Why not one number. The event log's offsets (AUTO_INCREMENT) are handed out when a row is
inserted, not when it commits, and every process has its own writer: process A may store
offset 10, process B offset 11, and B's event reach a socket first (B committed first, or
A's Redis publish is late). A client that remembers "11" and recovers from there never gets
10. Within one writer, though, offsets do commit in increasing order (it appends one batch
after the other, nexus_chat/event_log.py), and a process receives each writer's events in
that order (locally in offset order; through Redis one publisher connection per process, and
Redis keeps a publisher's order).

So a client's position is a vector: for each writer, the last offset of that writer it has
received. Every process keeps its own (`Progress`: what it has delivered, writer by writer);
each event is stamped, as the Socket.IO offset string, with the vector of the process that
delivers it, right after that event. Recovery replays, writer by writer, what comes after.

Bounds. A writer is one run of `nexus-chat serve` (a new id at each start), so over time
there are many; a stamp names only the writers whose events reached the process in the last
`RECENT_S`. A writer a position does not name owes the events it stored after the position's
time minus `MARGIN_S`: a named writer left out because it was quiet for `RECENT_S` had its last
event delivered more than `RECENT_S` before the stamp (its events are older than the margin),
and a writer not yet heard of has every event of its after the stamp. This assumes every event
reaches every process within `MARGIN_S` of being stored and the processes' clocks agree within
`MARGIN_S` (both are 5 minutes; Redis carries events in milliseconds).

Format (opaque to clients; parsed strictly, a client can send anything):
``v<unix seconds>`` then ``-<writer>.<offset>`` per writer, e.g. ``v1764525061-3.1052-5.77``.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# A writer quiet this long (no event delivered here) is left out of stamps: stamps stay short
# (the writers of the last ten minutes: about one per process) and a socket's position is at
# most one writer per process longer than that.
RECENT_S = 600
# An unnamed writer's events are owed from this long before the position's time; half of
# RECENT_S so that clock skew or a slow event up to 5 minutes is neither skipped nor repeated.
MARGIN_S = RECENT_S // 2
# A stamp names at most this many writers (with more recent ones, the least recent are left
# out, which the margin covers like any unnamed writer); a client's offset longer than
# MAX_LENGTH characters or naming more than twice as many (a session's start joined with the
# client's last stamp) is not a position.
MAX_WRITERS = 32
MAX_LENGTH = 2048           # 64 entries of up to 30 characters, and the time
# Writers not heard from for a day are forgotten by a process (memory stays bounded).
FORGET_S = 86_400

# The format (also the API's pattern): ASCII digits only (\d would take any script's), times up
# to the year 2286, writers from 1, offsets of at most 18 digits (below 2**63, BIGINT's).
PATTERN = r"v[0-9]{1,10}(?:-[1-9][0-9]{0,8}\.[0-9]{1,18}){0,%d}" % (2 * MAX_WRITERS)
_FORMAT = re.compile(r"v([0-9]{1,10})((?:-[1-9][0-9]{0,8}\.[0-9]{1,18})*)")
_ENTRY = re.compile(r"-([0-9]{1,9})\.([0-9]{1,18})")


@dataclass(frozen=True)
class Position:
    """``writers``: writer id -> last offset of it received; ``at``: when it was stamped
    (unix seconds), which decides what an unnamed writer owes."""

    at: int
    writers: Mapping[int, int] = field(default_factory=dict)

    def encode(self) -> str:
        return "v" + str(self.at) + "".join(f"-{w}.{o}" for w, o in sorted(self.writers.items()))

    @classmethod
    def parse(cls, value: Any) -> Position | None:
        """A position, or None for anything else (an old offset of digits, garbage)."""
        if not isinstance(value, str) or len(value) > MAX_LENGTH:
            return None
        match = _FORMAT.fullmatch(value)
        if match is None:
            return None
        writers: dict[int, int] = {}
        entries = _ENTRY.findall(match.group(2))
        if len(entries) > 2 * MAX_WRITERS:
            return None
        for writer, offset in entries:     # a writer named twice: the later offset
            writers[int(writer)] = max(int(offset), writers.get(int(writer), 0))
        return cls(int(match.group(1)), writers)

    def join(self, other: Position) -> Position:
        """Writer by writer the later offset, and the later time (what it owes by time, both
        owe; by offset, the position naming the writer)."""
        writers = dict(self.writers)
        for writer, offset in other.writers.items():
            writers[writer] = max(offset, writers.get(writer, 0))
        return Position(max(self.at, other.at), writers)

    def advanced(self, writer: int, offset: int) -> Position:
        return Position(self.at, {**self.writers, writer: max(offset, self.writers.get(writer, 0))})

    def owes(self, writer: int | None, offset: int, created_at: dt.datetime) -> bool:
        """Whether a client at this position has not received the event (``created_at``:
        naive UTC, as stored)."""
        if writer is not None and writer in self.writers:
            return offset > self.writers[writer]
        return epoch(created_at) > self.at - MARGIN_S

    def includes(self, writer: int | None, offset: int) -> bool:
        """As a ceiling (what a process had delivered): the event was delivered before it."""
        return writer is not None and offset <= self.writers.get(writer, 0)

    def lowest(self) -> int:
        """An offset below every event this position owes of a named writer (0 for none)."""
        return min(self.writers.values(), default=0)


@dataclass(frozen=True)
class WriterMark:
    """A writer's entry in Redis (realtime/redis_adapter.py, "Marks" and "Heads"; the wire:
    realtime/redis_wire.py): under the writer's number, ``<offset>.<unix time>[.<where the
    writer started>]``, the start being left out by processes of the version before it."""
    writer: int
    offset: int
    at: int
    start: int | None = None

    def value(self) -> str:
        return f"{self.offset}.{self.at}" + ("" if self.start is None else f".{self.start}")

    @classmethod
    def parse(cls, source: str, value: str) -> WriterMark | None:
        parts = value.split(".")
        if not (len(parts) in (2, 3) and all(p.isascii() and p.isdigit() for p in (source, *parts))):
            return None
        return cls(int(source), int(parts[0]), int(parts[1]), int(parts[2]) if len(parts) == 3 else None)


def epoch(value: dt.datetime) -> float:
    return value.replace(tzinfo=dt.timezone.utc).timestamp()


def utc_at(seconds: float) -> dt.datetime:
    """Naive UTC, as stored, of unix ``seconds`` (0 for anything earlier)."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=max(0.0, seconds))


class Progress:
    """What this process has delivered to its sockets, writer by writer (events of each
    writer arrive in offset order, so "the last one" means "all up to it")."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._last: dict[int, tuple[int, float]] = {}   # writer -> (offset, when it came)
        self._waiters: list[tuple[Position, asyncio.Future]] = []
        self._next_forget = 0.0
        self._done_below = 0     # writers numbered below this are finished runs (one process)
        self._start: dict[int, int] = {}    # writer -> the log's head when it started

    def done_below(self, writer: int) -> None:
        """One process: the writers numbered below its own are its earlier runs, finished;
        whatever a client has of theirs was delivered (or never will be) as far as this
        process is concerned."""
        self._done_below = writer

    def advance(self, writer: int, offset: int, at: float | None = None) -> None:
        """An event of ``writer`` at ``offset`` is being delivered. (Or, with ``at``, when it
        was stored: the events of ``writer`` up to ``offset`` that did not reach this process
        never will.)"""
        last = self._last.get(writer)
        if last is None or offset > last[0]:
            now = self.clock()
            self._last[writer] = (offset, now if at is None else min(at, now))
            if self._waiters:
                self._wake()

    def started(self, writer: int, head: int) -> None:
        """``writer`` began after the log's offset ``head``: every event of it is numbered
        after (a process announces its writer when it starts, docs/scaling.md). Named from
        now on, so that a session starting before its first event names it too."""
        self._start[writer] = head
        self.advance(writer, head)

    def last(self, writer: int) -> int | None:
        """The last offset of ``writer`` delivered here (None: none heard of)."""
        last = self._last.get(writer)
        return None if last is None else last[0]

    def stamp(self, now: float | None = None) -> str:
        """This process's progress as a client's position: the writers heard from lately.
        (Once per delivered event: written out directly, a few microseconds.)"""
        now = self.clock() if now is None else now
        last = self._last
        return "v" + str(int(now)) + "".join([f"-{w}.{last[w][0]}" for w in sorted(self._recent(now))])

    def position(self, now: float | None = None) -> Position:
        now = self.clock() if now is None else now
        return Position(int(now), {w: self._last[w][0] for w in self._recent(now)})

    def recent(self, position: Position) -> Position:
        """``position`` naming only the writers a stamp made now would name."""
        recent = set(self._recent(self.clock()))
        return Position(position.at, {w: o for w, o in position.writers.items() if w in recent})

    def _recent(self, now: float) -> list[int]:
        horizon = now - RECENT_S
        recent = [w for w, (_o, at) in self._last.items() if at > horizon]
        if len(recent) > MAX_WRITERS:
            recent = sorted(recent, key=lambda w: self._last[w][1])[-MAX_WRITERS:]
        if now >= self._next_forget:
            self._forget(now)
        return recent

    def snapshot(self) -> Position:
        """Everything delivered here so far (every writer: a ceiling for a replay)."""
        return Position(int(self.clock()), {w: o for w, (o, _at) in self._last.items()})

    def unnamed_may_owe(self, floor: Position) -> bool:
        """Whether a writer ``floor`` does not name may owe it events delivered here: one
        whose last event came after the floor's time less twice the margin (an owed event
        was stored after the time less the margin, and came at most a margin later)."""
        horizon = floor.at - 2 * MARGIN_S
        return any(w not in floor.writers and at >= horizon for w, (_o, at) in self._last.items())

    def unnamed_starts(self, floor: Position) -> dict[int, int] | None:
        """The writers `unnamed_may_owe` is about, each with where it started, or None if
        the start of one of them is not known here (its events are then owed by time)."""
        horizon = floor.at - 2 * MARGIN_S
        owing = [w for w, (_o, at) in self._last.items() if w not in floor.writers and at >= horizon]
        if any(w not in self._start for w in owing):
            return None
        return {w: self._start[w] for w in owing}

    def covers(self, position: Position) -> bool:
        return all(w < self._done_below or self._last.get(w, (0, 0.0))[0] >= o
                   for w, o in position.writers.items())

    async def reached(self, position: Position, timeout: float) -> bool:
        """Waits (up to ``timeout`` s) until every event ``position`` names was delivered
        here too; False if it never was."""
        if self.covers(position):
            return True
        waiter = asyncio.get_running_loop().create_future()
        entry = (position, waiter)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(waiter, timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _wake(self) -> None:
        for position, waiter in list(self._waiters):
            if not waiter.done() and self.covers(position):
                waiter.set_result(None)

    def _forget(self, now: float) -> None:
        self._next_forget = now + 60     # a writer forgotten a minute late costs nothing
        for writer in [w for w, (_o, at) in self._last.items() if now - at >= FORGET_S]:
            del self._last[writer]
            self._start.pop(writer, None)
