"""The event log: a stage on the events port (events.py) that stores every non-volatile event
before it is delivered, and gives it its offset.

Offsets must never let a client skip an event that commits late. InnoDB hands out
AUTO_INCREMENT values before COMMIT, so two writers could commit offsets 6 then 5, and a
reader between the two commits would see 6 and move past 5. Here one writer per process
appends the queued events a batch per transaction, and only then are they delivered, in
offset order. Batching also keeps the cost of the log to one round trip per batch, not per
event.

Several processes (Redis scale-out) each have their own writer, and their commits interleave:
offsets are in commit order per writer only. Each writer therefore has an id (a row of
``event_writers``, a new one at every start) stored with its events, and a client's position
is not one offset but one per writer (nexus_chat/offsets.py): reading "what comes after a
position" writer by writer is exact however the writers' commits and their Redis deliveries
interleave (`events_owed`).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from .db import Database, Row, db_unreachable, is_contention
from .events import Audience, Emit, Record, with_offset
from .jsonutil import dumps, utcnow
from .offsets import MARGIN_S, Position, utc_at
from .queries import event_log as event_log_queries

log = logging.getLogger("nexus_chat.event_log")

# Events appended per transaction. Under load a batch fills while the previous one commits;
# 200 rows of a few hundred bytes each stay far below max_allowed_packet.
MAX_BATCH = 200

# A batch that failed to store for a reason a retry may fix (the database unreachable, a
# deadlock) is tried again, backing off from 50 ms to 1 s, for up to STORE_RETRY_S: its change
# has committed, so an event missing from the log would be missing from every recovery and
# every REST catch-up. The events behind it wait (offsets stay in order); during an outage long
# enough for that to matter, sending fails anyway. Past it, the batch goes out without offsets.
STORE_RETRY_S = 10.0
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 1.0


def _except_users(record: Emit) -> str | None:
    return ",".join(sorted(record.audience.except_users)) or None


@dataclass
class _Pending:
    record: Emit
    done: asyncio.Future


def _without_offsets(pending: list[_Pending]) -> None:
    """Lets the events go on to delivery as published, with no offset."""
    for one in pending:
        if not one.done.done():
            one.done.set_result(one.record)


class EventLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.writer: int | None = None    # this run's id in event_writers
        self.head_at_start = 0
        self.newest_stored = 0            # this writer's newest offset known to be stored
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task | None = None

    async def start(self) -> "EventLog":
        async with self.db.transaction() as tx:
            self.writer = await event_log_queries.new_writer(tx, utcnow())
        # Every event of this writer will be numbered after the log's newest now.
        self.head_at_start = await event_log_queries.head(self.db)
        self._writer = asyncio.ensure_future(self._write_forever())
        return self

    async def earlier_writers(self, since: dt.datetime) -> list[tuple[int, int, dt.datetime]]:
        """(writer, newest offset, when it was stored) of the other writers since ``since``.
        With one process they are its earlier runs: everything of theirs is done."""
        rows = await event_log_queries.writer_heads(self.db, since, self.writer or 0)
        return [(int(r["writer"]), int(r["offset"]), r["created"]) for r in rows]

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
            self._writer = None
        _without_offsets(self._queue)   # still deliver what was published
        self._queue.clear()

    # ---- the events port ------------------------------------------------------------------
    async def stage(self, record: Record) -> Record | None:
        """Non-volatile events wait for their offset; everything else passes at once."""
        if not isinstance(record, Emit) or record.volatile or self._writer is None:
            return record
        done = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(record, done))
        self._wake.set()
        return await done

    # ---- the writer -------------------------------------------------------------------------
    async def _write_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                await self._write(batch)

    async def _write(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + STORE_RETRY_S
        delay = RETRY_FIRST_S
        uncertain = False
        while True:
            try:
                # A link that broke during COMMIT leaves it unknown whether the batch is stored:
                # then the writer's newest offset tells (only this writer stores its rows).
                first = await self._stored_already(len(batch)) if uncertain else None
                if first is None:
                    first = await self._store(batch)
                break
            except Exception as exc:
                retry = (db_unreachable(exc) or is_contention(exc)) and loop.time() + delay < give_up_at
                if not retry:
                    # The change itself is committed: deliver it live all the same, without
                    # an offset (a client then cannot skip past it, and a replay cannot
                    # repeat it); it is missing from recovery and the REST catch-up.
                    log.error("event log: could not store %d events; delivered without offsets",
                              len(batch), exc_info=True)
                    _without_offsets(batch)
                    return
                log.warning("event log: storing %d events failed (%s); retrying in %.2f s",
                            len(batch), exc, delay)
                uncertain = uncertain or db_unreachable(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
        self.newest_stored = first + len(batch) - 1
        for i, pending in enumerate(batch):
            if not pending.done.done():
                pending.done.set_result(with_offset(pending.record, str(first + i), self.writer))

    async def _store(self, batch: list[_Pending]) -> int:
        """One transaction: the events and their targets. Returns the first offset."""
        async with self.db.transaction() as tx:
            rows = [(self.writer, p.record.event, dumps(p.record.payload).decode(), _except_users(p.record),
                     p.record.audience.except_socket) for p in batch]
            first = await event_log_queries.append(tx, rows, utcnow())
            targets = [(first + i, kind, target)
                       for i, p in enumerate(batch)
                       for kind, ids in (("u", p.record.audience.users), ("g", p.record.audience.groups))
                       for target in sorted(ids)]
            if targets:
                await event_log_queries.add_targets(tx, targets)
        return first

    async def _stored_already(self, count: int) -> int | None:
        """The first offset of the last ``count`` events if a batch past ``newest_stored`` is
        stored (its COMMIT went through before the link broke), else None."""
        newest = await event_log_queries.writer_newest(self.db, self.writer)
        return newest - count + 1 if newest > self.newest_stored else None


# ---- reading ---------------------------------------------------------------------------------
async def head(db: Database) -> int:
    """The newest stored offset (0 for none)."""
    return await event_log_queries.head(db)


@dataclass(frozen=True)
class LoggedEvent:
    offset: int
    event: str
    payload: str          # JSON text, as stored
    created_at: str
    writer: int | None = None

    @classmethod
    def from_row(cls, row: Row) -> "LoggedEvent":
        writer = None if row.get("writer") is None else int(row["writer"])
        return cls(int(row["offset"]), row["event"], row["payload"], row["created_at"], writer)


def addressed_to(row: Row, user_id: str, socket_id: str | None = None) -> bool:
    """False for the user (or the socket) the publisher left out."""
    if socket_id is not None and row["except_socket"] == socket_id:
        return False
    return not (row["except_users"] and user_id in row["except_users"].split(","))


async def events_after(db: Database, user_id: str, group_ids: list[str], *, after: int,
                       up_to: int | None, limit: int, socket_id: str | None = None) -> list[LoggedEvent]:
    """The user's events after ``after``, oldest first: ``limit`` of them, or fewer when
    there are no more (the recovery cap and ``hasMore`` count on it). Rows the audience's
    exceptions leave out do not count: reading goes on past them."""
    found: list[LoggedEvent] = []
    while len(found) < limit:
        wanted = limit - len(found)
        rows = await event_log_queries.events_for(db, user_id, group_ids, after=after, up_to=up_to,
                                                  limit=wanted)
        found += [LoggedEvent.from_row(row) for row in rows if addressed_to(row, user_id, socket_id)]
        if len(rows) < wanted:
            break
        after = int(rows[-1]["offset"])
    return found


async def events_owed(db: Database, user_id: str, group_ids: list[str], *, floor: Position,
                      base: Position | None, ceiling: Position | None, limit: int,
                      socket_id: str | None = None, unnamed: bool = True,
                      starts: Mapping[int, int] | None = None) -> list[LoggedEvent]:
    """The user's events a client at ``floor`` has not received, oldest first, at most
    ``limit``: of each writer the floor names, those after its offset there; of any other
    writer, those stored after the floor's time less the margin (offsets.py). ``base`` (where
    the session started) must owe them too: a client's position from before the session, or
    forged, fetches nothing older. With a ``ceiling`` (what the delivering process had
    delivered when the socket joined its rooms) only what it includes: the rest reaches the
    socket live. ``unnamed=False``: the caller knows that no writer the floor does not name
    owes anything (`Progress.unnamed_may_owe`); ``starts``: those that may, each with the
    offset it started after (`Progress.unnamed_starts`), so they need no reading by time."""
    if unnamed and starts is None:
        after = await _below(db, floor, True)
    else:
        after = await _first_owed(db, floor, starts or {}, ceiling)
    if base is not None:
        after = max(after, await _below(db, base, True))
    up_to = None if ceiling is None else max(ceiling.writers.values(), default=0)
    found: list[LoggedEvent] = []
    while len(found) < limit:
        rows = await event_log_queries.events_for(db, user_id, group_ids, after=after, up_to=up_to,
                                                  limit=limit)
        for row in rows:
            writer = None if row["writer"] is None else int(row["writer"])
            offset, created = int(row["offset"]), row["created"]
            if not floor.owes(writer, offset, created) or (not unnamed and writer not in floor.writers) \
                    or (starts is not None and writer not in floor.writers and writer not in starts):
                continue
            if base is not None and not base.owes(writer, offset, created):
                continue
            if ceiling is not None and not ceiling.includes(writer, offset):
                continue
            if addressed_to(row, user_id, socket_id):
                found.append(LoggedEvent.from_row(row))
                if len(found) == limit:
                    break
        if len(rows) < limit:
            break
        after = int(rows[-1]["offset"])
    return found


async def writer_events(db: Database, writer: int, *, after: int, up_to: int, limit: int) -> list[Emit]:
    """``writer``'s events with ``after`` < offset ≤ ``up_to``, oldest first, at most ``limit``,
    as they were published (audience, offset and writer; the payload as stored)."""
    rows = await event_log_queries.writer_events(db, writer, after=after, up_to=up_to, limit=limit)
    audiences: dict[int, tuple[set[str], set[str]]] = {}
    for target in await event_log_queries.targets_of(db, [int(row["offset"]) for row in rows]):
        users, groups = audiences.setdefault(int(target["offset"]), (set(), set()))
        (users if target["kind"] == "u" else groups).add(target["target_id"])
    events = []
    for row in rows:
        users, groups = audiences.get(int(row["offset"]), (set(), set()))
        audience = Audience(frozenset(users), frozenset(groups),
                            frozenset((row["except_users"] or "").split(",")) - {""}, row["except_socket"])
        events.append(Emit(row["event"], orjson.loads(row["payload"]), audience, offset=str(row["offset"]),
                           writer=writer))
    return events


async def writer_events_exceed(db: Database, writer: int, *, after: int, up_to: int, count: int) -> bool:
    """Whether ``writer`` stored more than ``count`` events with ``after`` < offset ≤ ``up_to``
    (reads ``count`` index entries, no event)."""
    return await event_log_queries.writer_offset_past(db, writer, after=after, up_to=up_to, skip=count) is not None


async def _below(db: Database, position: Position, unnamed: bool) -> int:
    """An offset below every event ``position`` owes: its lowest named offset and, for the
    writers it does not name, the newest event stored a margin before their start (an event
    stored after that start was numbered after it, with clocks a margin apart at most)."""
    bounds = list(position.writers.values())
    if unnamed:
        bounds.append(await event_log_queries.offset_before(db, utc_at(position.at - 2 * MARGIN_S)))
    return min(bounds, default=2 ** 63 - 1)


async def _first_owed(db: Database, floor: Position, starts: Mapping[int, int],
                      ceiling: Position | None) -> int:
    """An offset below every event ``floor`` owes when no writer is owed by time: for each
    writer it names (and each of ``starts``, from where it started), just below that
    writer's first event after it, one seek each; a writer of which the ceiling holds
    nothing more is skipped. The read then starts at the first event really owed, not at the
    oldest offset the floor names (a quiet writer's, perhaps minutes of other writers' events
    before)."""
    bounds = []
    for writer, offset in {**starts, **floor.writers}.items():
        if ceiling is not None and ceiling.writers.get(writer, 0) <= offset:
            continue
        first = await event_log_queries.first_after(db, writer, offset)
        if first is not None:
            bounds.append(first - 1)
    return min(bounds, default=2 ** 63 - 1)


async def restarted(db: Database, base: Position, floor: Position) -> Position:
    """Where a recovered session starts again: after what the client has (``floor``) and
    never before its old start (``base``). Each writer's later offset; a writer only the
    floor names owes no earlier than the old start by time would (the bound of `_below`)."""
    only_floor = [w for w in floor.writers if w not in base.writers]
    low = await event_log_queries.offset_before(db, utc_at(base.at - 2 * MARGIN_S)) if only_floor else 0
    raised = {w: max(o, low) if w in only_floor else o for w, o in floor.writers.items()}
    return base.join(Position(floor.at, raised))


async def position_swept(db: Database, position: Position) -> bool:
    """Whether events a client at ``position`` is owed may have been swept."""
    oldest = await event_log_queries.oldest(db)
    return oldest is not None and any(offset < oldest - 1 for offset in position.writers.values())


async def swept_past(db: Database, after: int) -> bool:
    """Whether events after offset ``after`` were swept (a reader from there has a gap)."""
    oldest = await event_log_queries.oldest(db)
    return oldest is not None and after < oldest - 1


async def sweep(db: Database, keep: dt.timedelta) -> int:
    """Drops events older than ``keep`` (and the expired recoverable sessions). The newest
    event stays, however old: the oldest one kept is how readers know what was swept."""
    now = utcnow()
    newest = await event_log_queries.head(db)
    removed = 0
    while True:
        count = await event_log_queries.delete_before(db, now - keep, newest, 5000)
        removed += count
        if count < 5000:
            break
    await event_log_queries.delete_expired_sessions(db, now)
    return removed


# ---- recoverable sessions (the socket layer keeps and claims them through these) -------------
async def keep_session(db: Database, *, pid_hash: str, sid: str, user_id: str, base: Position,
                       expires_at: dt.datetime) -> None:
    await event_log_queries.save_session(db, pid_hash=pid_hash, sid=sid, user_id=user_id,
                                         base_position=base.encode(), expires_at=expires_at)


async def take_session(db: Database, pid_hash: str, user_id: str, now: dt.datetime) -> Row | None:
    """The user's unexpired session of this pid, removed (a pid recovers once); another
    user's claim leaves it alone."""
    return await event_log_queries.take_session(db, pid_hash, user_id, now)
