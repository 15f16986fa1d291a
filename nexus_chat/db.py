"""The database pool and the two ways to run SQL: a single statement, or a transaction.

Query functions (nexus_chat/queries/) take an ``Executor`` — either the ``Database`` itself
(each statement autocommits on a pooled connection) or a ``Transaction`` — so the same
named query serves both.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import Any, AsyncIterator, Callable, Protocol, Sequence

import aiomysql
import pymysql


log = logging.getLogger("nexus_chat.db")

Row = dict[str, Any]
Args = Sequence[Any] | dict[str, Any] | None


class _NoWarnings:
    """The statements of this project expect the server's warnings and notes: an INSERT
    IGNORE of a duplicate row, a DROP … IF EXISTS of nothing. aiomysql would fetch them with
    an extra SHOW WARNINGS round trip and raise each as a Python warning; these cursors skip
    both (``_show_warnings`` is aiomysql's hook for it, checked by tests/e2e/test_db_gate.py)."""

    async def _show_warnings(self, conn: Any) -> None:
        return None


class QuietCursor(_NoWarnings, aiomysql.Cursor):
    pass


class QuietDictCursor(_NoWarnings, aiomysql.DictCursor):
    pass


class Executor(Protocol):
    async def fetch_one(self, sql: str, args: Args = None) -> Row | None: ...
    async def fetch_all(self, sql: str, args: Args = None) -> list[Row]: ...
    async def execute(self, sql: str, args: Args = None) -> int: ...


class DatabaseUnavailable(Exception):
    """The database did not answer (health check, start-up)."""


class Transaction:
    """Runs statements on one connection inside BEGIN … COMMIT."""

    def __init__(self, cursor: aiomysql.DictCursor) -> None:
        self._cursor = cursor

    async def fetch_one(self, sql: str, args: Args = None) -> Row | None:
        await self._cursor.execute(sql, args)
        return await self._cursor.fetchone()

    async def fetch_all(self, sql: str, args: Args = None) -> list[Row]:
        await self._cursor.execute(sql, args)
        return list(await self._cursor.fetchall())

    async def execute(self, sql: str, args: Args = None) -> int:
        return await self._cursor.execute(sql, args)

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        return await self._cursor.executemany(sql, rows)

    async def insert(self, sql: str, args: Args = None) -> int:
        """Runs an INSERT; returns the AUTO_INCREMENT value of its first row (the OK packet
        carries it: no ``SELECT LAST_INSERT_ID()`` round trip)."""
        await self._cursor.execute(sql, args)
        return int(self._cursor.lastrowid)


class FairGate:
    """At most ``size`` holders; a freed slot goes to the oldest waiter.

    aiomysql's pool lets a newcomer take a connection that was just released ahead of the
    requests already waiting for one, so under load a few requests starved for seconds
    (rest-me p99 ~1 s at p50 17 ms). Queueing in front of the pool in arrival order keeps
    the tail close to the median.
    """

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: collections.deque[asyncio.Future] = collections.deque()

    async def acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over as we were cancelled: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves straight to the oldest waiter
                return
        self._free += 1

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()


class Availability:
    """Whether the database is reachable, as the statements run see it. An outage is logged
    once when it starts and once when it ends (never once per failed statement); while it
    lasts, a probe asks every ``probe_s`` so the end is noticed even when nobody queries, and
    the callbacks registered with ``on_recovered`` run when it is back (presence repair)."""

    def __init__(self, probe: Callable[[], Any], probe_s: float = 1.0) -> None:
        self._probe = probe
        self.probe_s = probe_s
        self.down_since: float | None = None
        self._recovered: list[Callable[[], Any]] = []
        self._task: asyncio.Task | None = None
        self.closed = False

    @property
    def up(self) -> bool:
        return self.down_since is None

    def on_recovered(self, callback: Callable[[], Any]) -> None:
        self._recovered.append(callback)

    def failed(self, exc: BaseException) -> None:
        if not db_unreachable(exc) or self.down_since is not None or self.closed:
            return
        self.down_since = time.monotonic()
        log.warning("database unavailable: %s", exc)
        self._task = asyncio.get_running_loop().create_task(self._watch())

    def answered(self) -> None:
        if self.down_since is None:
            return
        lasted = time.monotonic() - self.down_since
        self.down_since = None
        log.info("database available again after_s=%.1f", lasted)
        for callback in self._recovered:
            try:
                callback()
            except Exception:
                log.exception("database recovery callback failed")

    async def _watch(self) -> None:
        while self.down_since is not None and not self.closed:
            await asyncio.sleep(self.probe_s)
            await self._probe()   # Database.ping: its statement reports back here

    async def close(self) -> None:
        self.closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Database:
    """Owns the aiomysql pool. Connections speak utf8mb4 and UTC."""

    def __init__(self, pool: aiomysql.Pool) -> None:
        self.pool = pool
        self._gate = FairGate(pool.maxsize)
        self.availability = Availability(self.ping)

    @classmethod
    async def connect(cls, *, host: str, port: int, user: str, password: str, db: str,
                      maxsize: int = 10, minsize: int = 1) -> "Database":
        pool = await aiomysql.create_pool(
            host=host, port=port, user=user, password=password, db=db,
            minsize=minsize, maxsize=maxsize, autocommit=True, charset="utf8mb4",
            cursorclass=QuietDictCursor,
            init_command="SET time_zone = '+00:00', NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
            # Recycle before MariaDB's default wait_timeout (8 h) drops an idle connection.
            pool_recycle=3600,
        )
        return cls(pool)

    async def close(self) -> None:
        await self.availability.close()
        self.pool.close()
        await self.pool.wait_closed()

    @contextlib.asynccontextmanager
    async def _cursor(self) -> AsyncIterator[aiomysql.DictCursor]:
        async with self._gate.slot():
            try:
                async with self.pool.acquire() as conn:
                    async with conn.cursor() as cursor:
                        yield cursor
            except Exception as exc:
                self.availability.failed(exc)
                raise
            self.availability.answered()

    async def fetch_one(self, sql: str, args: Args = None) -> Row | None:
        async with self._cursor() as cursor:
            await cursor.execute(sql, args)
            return await cursor.fetchone()

    async def fetch_all(self, sql: str, args: Args = None) -> list[Row]:
        async with self._cursor() as cursor:
            await cursor.execute(sql, args)
            return list(await cursor.fetchall())

    async def execute(self, sql: str, args: Args = None) -> int:
        async with self._cursor() as cursor:
            return await cursor.execute(sql, args)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """BEGIN … COMMIT, rolled back if the block raises."""
        async with self._gate.slot():
            try:
                async with self.pool.acquire() as conn:
                    await conn.begin()
                    try:
                        async with conn.cursor() as cursor:
                            yield Transaction(cursor)
                        await conn.commit()
                    except BaseException:
                        with contextlib.suppress(Exception):
                            await conn.rollback()
                        raise
            except Exception as exc:
                self.availability.failed(exc)
                raise
            self.availability.answered()

    async def ping(self) -> bool:
        try:
            row = await self.fetch_one("SELECT 1 AS ok")
            return bool(row and row["ok"] == 1)
        except Exception:
            return False

    def usage(self) -> tuple[int, int, int]:
        """(connections in use, open connections, maximum) for metrics."""
        pool = self.pool
        return pool.size - pool.freesize, pool.size, pool.maxsize


# ---- what a MySQL/MariaDB error means (its error code) --------------------------------------
DUPLICATE_KEY = 1062
MISSING_PARENT = 1452                              # a foreign key's parent row is gone
CONTENTION = frozenset({1205, 1213})               # lock wait timeout, deadlock: rolled back, retry
# The database cannot be reached (refused, lost, gone away, shutting down, too many connections).
UNREACHABLE = frozenset({1040, 1053, 1927, 2002, 2003, 2006, 2013, 2055})


def _code(exc: BaseException | None, kind: type[BaseException]) -> int | None:
    if isinstance(exc, kind) and exc.args and isinstance(exc.args[0], int):
        return exc.args[0]
    return None


def is_duplicate_key(exc: BaseException | None) -> bool:
    return _code(exc, pymysql.err.IntegrityError) == DUPLICATE_KEY


def is_missing_parent(exc: BaseException | None) -> bool:
    return _code(exc, pymysql.err.IntegrityError) == MISSING_PARENT


def is_contention(exc: BaseException | None) -> bool:
    """Deadlock or lock wait timeout: the server rolled back; the same request will most
    likely succeed when sent again."""
    return _code(exc, pymysql.err.OperationalError) in CONTENTION


def db_unreachable(exc: BaseException | None) -> bool:
    """The database is down or the connection to it broke (an outage, not a bug)."""
    if isinstance(exc, pymysql.err.InterfaceError):
        return True
    return _code(exc, pymysql.err.OperationalError) in UNREACHABLE
