"""Event log SQL: appending events in order, reading a user's events after an offset, and
the recoverable Socket.IO sessions."""
from __future__ import annotations

import datetime as dt

from ..db import Executor, Row, Transaction


async def new_writer(tx: Transaction, now: dt.datetime) -> int:
    """A new event-log writer's id (one per process run)."""
    return await tx.insert("INSERT INTO event_writers (started_at) VALUES (%s)", (now,))


async def append(tx: Transaction, rows: list[tuple], now: dt.datetime) -> int:
    """Inserts events (writer, event, payload, except_users, except_socket) in one statement;
    returns the offset of the first (InnoDB gives one multi-row INSERT consecutive values)."""
    marks = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
    args = [value for row in rows for value in (*row, now)]
    return await tx.insert(
        "INSERT INTO event_log (writer, event, payload, except_users, except_socket, created_at)"
        f" VALUES {marks}", tuple(args))


async def add_targets(db: Executor, targets: list[tuple[int, str, str]]) -> int:
    marks = ", ".join(["(%s, %s, %s)"] * len(targets))
    return await db.execute(
        f"INSERT INTO event_log_targets (`offset`, kind, target_id) VALUES {marks}",
        tuple(value for target in targets for value in target))


async def head(db: Executor) -> int:
    row = await db.fetch_one("SELECT COALESCE(MAX(`offset`), 0) AS head FROM event_log")
    return int(row["head"])


async def offset_before(db: Executor, before: dt.datetime) -> int:
    """The offset of the newest event stored before ``before`` (0 for none): one seek in the
    index on created_at."""
    row = await db.fetch_one("SELECT `offset` FROM event_log WHERE created_at < %s"
                             " ORDER BY created_at DESC, `offset` DESC LIMIT 1", (before,))
    return 0 if row is None else int(row["offset"])


async def writer_heads(db: Executor, since: dt.datetime, other_than: int) -> list[Row]:
    """Each writer's newest event stored since ``since`` (``offset``, ``created``), but
    ``other_than``'s."""
    return await db.fetch_all(
        "SELECT writer, MAX(`offset`) AS `offset`, MAX(created_at) AS created FROM event_log"
        " WHERE created_at >= %s AND writer IS NOT NULL AND writer <> %s GROUP BY writer",
        (since, other_than))


async def writer_newest(db: Executor, writer: int) -> int:
    """``writer``'s newest stored offset (0 for none): one seek in ix_event_log_writer."""
    row = await db.fetch_one("SELECT COALESCE(MAX(`offset`), 0) AS newest FROM event_log WHERE writer = %s",
                             (writer,))
    return int(row["newest"])


async def first_after(db: Executor, writer: int, after: int) -> int | None:
    """The offset of ``writer``'s first event after ``after`` (None for none yet): one seek
    in ix_event_log_writer."""
    row = await db.fetch_one("SELECT MIN(`offset`) AS first FROM event_log WHERE writer = %s AND `offset` > %s",
                             (writer, after))
    return None if row["first"] is None else int(row["first"])


async def writer_events(db: Executor, writer: int, *, after: int, up_to: int, limit: int) -> list[Row]:
    """``writer``'s events with ``after`` < offset ≤ ``up_to``, oldest first, at most ``limit``."""
    return await db.fetch_all(
        "SELECT `offset`, event, payload, except_users, except_socket FROM event_log"
        " WHERE writer = %s AND `offset` > %s AND `offset` <= %s ORDER BY `offset` LIMIT %s",
        (writer, after, up_to, limit))


async def writer_offset_past(db: Executor, writer: int, *, after: int, up_to: int, skip: int) -> int | None:
    """The offset of ``writer``'s event after the first ``skip`` with ``after`` < offset ≤
    ``up_to`` (None: there are at most ``skip``): ``skip`` entries of ix_event_log_writer."""
    row = await db.fetch_one(
        "SELECT `offset` FROM event_log WHERE writer = %s AND `offset` > %s AND `offset` <= %s"
        " ORDER BY `offset` LIMIT 1 OFFSET %s", (writer, after, up_to, skip))
    return None if row is None else int(row["offset"])


async def targets_of(db: Executor, offsets: list[int]) -> list[Row]:
    """The targets (``offset``, ``kind``, ``target_id``) of the events at ``offsets``."""
    if not offsets:
        return []
    marks = ", ".join(["%s"] * len(offsets))
    return await db.fetch_all(
        f"SELECT `offset`, kind, target_id FROM event_log_targets WHERE `offset` IN ({marks})", tuple(offsets))


async def oldest(db: Executor) -> int | None:
    row = await db.fetch_one("SELECT MIN(`offset`) AS first FROM event_log")
    return None if row["first"] is None else int(row["first"])


async def events_for(db: Executor, user_id: str, group_ids: list[str], *, after: int,
                     up_to: int | None, limit: int) -> list[Row]:
    """The events addressed to the user or one of ``group_ids`` with ``after`` < offset
    (≤ ``up_to``), oldest first, at most ``limit``."""
    targets = [user_id, *group_ids]
    marks = ", ".join(["%s"] * len(targets))
    bound = "" if up_to is None else " AND t.`offset` <= %s"
    args: list = [*targets, after] + ([] if up_to is None else [up_to]) + [limit]
    return await db.fetch_all(
        "SELECT e.`offset`, e.writer, e.event, e.payload, e.except_users, e.except_socket,"
        " e.created_at AS created, CAST(e.created_at AS CHAR) AS created_at FROM event_log e"
        " JOIN (SELECT DISTINCT t.`offset` FROM event_log_targets t"
        f"       WHERE t.target_id IN ({marks}) AND t.`offset` > %s{bound}) hit"
        "   ON hit.`offset` = e.`offset`"
        " ORDER BY e.`offset` LIMIT %s", tuple(args))


async def delete_before(db: Executor, cutoff: dt.datetime, below: int, limit: int) -> int:
    """Deletes the oldest events created before ``cutoff`` with an offset below ``below``."""
    return await db.execute(
        "DELETE FROM event_log WHERE created_at < %s AND `offset` < %s ORDER BY `offset` LIMIT %s",
        (cutoff, below, limit))


# ---- recoverable sessions -------------------------------------------------------------------
async def save_session(db: Executor, *, pid_hash: str, sid: str, user_id: str, base_position: str,
                       expires_at: dt.datetime) -> int:
    """``base_offset`` is the column of the previous version's sessions (0 here)."""
    return await db.execute(
        "INSERT INTO recovery_sessions (pid_hash, sid, user_id, base_offset, base_position, expires_at)"
        " VALUES (%s, %s, %s, 0, %s, %s) ON DUPLICATE KEY UPDATE sid = VALUES(sid),"
        " base_position = VALUES(base_position), expires_at = VALUES(expires_at)",
        (pid_hash, sid, user_id, base_position, expires_at))


async def take_session(db: Executor, pid_hash: str, user_id: str, now: dt.datetime) -> Row | None:
    """The user's unexpired session of this pid, removed (a pid recovers once: of two
    concurrent claims only the one whose DELETE removed the row gets it). Another user's
    claim leaves the session alone."""
    row = await db.fetch_one(
        "SELECT sid, user_id, base_position FROM recovery_sessions"
        " WHERE pid_hash = %s AND user_id = %s AND expires_at > %s", (pid_hash, user_id, now))
    if row is None:
        return None
    taken = await db.execute("DELETE FROM recovery_sessions WHERE pid_hash = %s AND user_id = %s",
                             (pid_hash, user_id))
    return row if taken else None


async def delete_expired_sessions(db: Executor, now: dt.datetime) -> int:
    return await db.execute("DELETE FROM recovery_sessions WHERE expires_at <= %s", (now,))
