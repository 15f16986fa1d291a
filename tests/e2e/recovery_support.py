"""Helpers of the recovery tests: the official JS client (tests/js/recovery_client.js) driven
line by line, and a database lock held by a connection of the test's own (to make a
transaction of the server commit later than one that started after it)."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator

import aiomysql
from tornado.websocket import websocket_connect

from nexus_chat.offsets import Position

from .chat_support import JS_DIR

SCRIPT = JS_DIR / "recovery_client.js"
RECOVERY = {"realtime_recovery": True}


def newest(offset: str) -> int:
    """The newest event-log offset a socket's offset (a position: one offset per writer,
    nexus_chat/offsets.py) names; with one process, one a process run."""
    position = Position.parse(offset)
    assert position is not None, offset
    return max(position.writers.values(), default=0)


class RecoveringClient:
    """tests/js/recovery_client.js: the official client with reconnection on."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen: list[dict] = []

    @classmethod
    async def start(cls, node: str, base_url: str, token: str, delay_ms: int | None = None):
        args = [node, str(SCRIPT), base_url, token] + ([str(delay_ms)] if delay_ms else [])
        proc = await asyncio.create_subprocess_exec(*args, cwd=JS_DIR, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    async def until(self, predicate, timeout: float = 10) -> dict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), max(0.1, deadline - loop.time()))
            if not line:
                raise AssertionError("node client exited: " + (await self.proc.stderr.read()).decode()[-2000:])
            item = json.loads(line)
            self.seen.append(item)
            if predicate(item):
                return item

    async def wait(self, condition, timeout: float = 10) -> None:
        """Until ``condition()`` holds over what was seen (it may already)."""
        if not condition():
            await self.until(lambda _item: condition(), timeout)

    async def command(self, cmd: str, **fields) -> None:
        self.proc.stdin.write((json.dumps({"cmd": cmd, **fields}) + "\n").encode())
        await self.proc.stdin.drain()

    async def send(self, content: str, **target) -> dict:
        """sendMessage from this client: the stored message (its ack)."""
        await self.command("send", data={"content": content, **target})
        item = await self.until(lambda i: i["type"] == "ack")
        assert isinstance(item["ack"], dict) and item["ack"].get("id"), item
        return item["ack"]

    def messages(self, since: int = 0) -> list[list]:
        return [i["args"] for i in self.seen[since:] if i["type"] == "event" and i["event"] == "message"]

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def drop(client: RecoveringClient) -> None:
    """The connection breaks; the client reconnects by itself (after its delay)."""
    await client.command("drop")
    await client.until(lambda i: i["type"] == "disconnect")


async def hold(client: RecoveringClient, db_target) -> None:
    """The connection breaks; the client stays away until `resume` (and the server has kept
    its session by then)."""
    pid = next(i["pid"] for i in reversed(client.seen) if i["type"] == "connect")
    await client.command("hold")
    await client.until(lambda i: i["type"] == "disconnect")
    await kept(db_target, pid)


async def kept(db_target, pid: str, timeout: float = 10) -> None:
    """Until the server has stored the session of ``pid`` for recovery (it does so after the
    disconnect, in the background)."""
    pid_hash = hashlib.sha256(pid.encode()).hexdigest()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with connection(db_target) as conn:
        while True:
            async with conn.cursor() as cur:
                await cur.execute("SELECT COUNT(*) FROM recovery_sessions WHERE pid_hash = %s", (pid_hash,))
                [count] = await cur.fetchone()
            if count:
                return
            assert loop.time() < deadline, "the session was not kept"
            await asyncio.sleep(0.05)


async def resume(client: RecoveringClient) -> dict:
    """Reconnects a held client: its next `connect` (or `connect_error`) line."""
    await client.command("resume")
    return await client.until(lambda i: i["type"] in ("connect", "connect_error"), timeout=15)


class RowLock:
    """A transaction of the test's own holding ``FOR UPDATE`` locks (see `row_lock`)."""

    def __init__(self, conn: aiomysql.Connection) -> None:
        self.conn = conn

    async def waited_on(self, timeout: float = 10) -> None:
        """Until another transaction waits for a lock this one holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            # InnoDB refreshes these tables only after 0.1 s without a read of them, so a
            # transaction just begun can be missing from a view another reader refreshed.
            async with self.conn.cursor() as cur:
                await cur.execute("SELECT trx_id FROM information_schema.INNODB_TRX"
                                  " WHERE trx_mysql_thread_id = CONNECTION_ID()")
                found = await cur.fetchone()
            if found is not None:
                [own] = found
                break
            if loop.time() > deadline:
                raise AssertionError("the lock-holding transaction never showed in INNODB_TRX")
            await asyncio.sleep(0.25)
        while True:
            async with self.conn.cursor() as cur:
                await cur.execute("SELECT COUNT(*) FROM information_schema.INNODB_LOCK_WAITS"
                                  " WHERE blocking_trx_id = %s", (own,))
                [waiting] = await cur.fetchone()
            if waiting:
                return
            if loop.time() > deadline:
                raise AssertionError("nothing waited for the lock")
            # InnoDB refreshes these tables only after 0.1 s without a read of them.
            await asyncio.sleep(0.25)


@contextlib.asynccontextmanager
async def connection(db_target, *, autocommit: bool = True) -> AsyncIterator[aiomysql.Connection]:
    """A database connection of the test's own (beside the server's pool)."""
    conn = await aiomysql.connect(host=db_target.host, port=db_target.port, user=db_target.user,
                                  password=db_target.password, db=db_target.name, autocommit=autocommit)
    try:
        yield conn
    finally:
        conn.close()


@contextlib.asynccontextmanager
async def row_lock(db_target, sql: str, args: tuple) -> AsyncIterator[RowLock]:
    """Holds the locks of ``sql`` (a SELECT … FOR UPDATE) until the block ends, then rolls back."""
    async with connection(db_target, autocommit=False) as conn:
        try:
            async with conn.cursor() as cur:
                await cur.execute("BEGIN")
                await cur.execute(sql, args)
            yield RowLock(conn)
        finally:
            await conn.rollback()


class RawChat:
    """A bare WebSocket Socket.IO client of `/chat` that sends exactly the CONNECT auth it is
    given (a forged pid or offset) and shows the answer as sent."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.answer: dict = {}
        self.refused: dict | None = None
        self.events: list[tuple[str, list]] = []

    @classmethod
    async def connect(cls, port: int, auth: dict) -> "RawChat":
        ws = await websocket_connect(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
        client = cls(ws)
        opened = await ws.read_message()
        assert opened.startswith("0"), opened
        ws.write_message("40/chat," + json.dumps(auth))
        while True:
            frame = await client._read()
            if frame.startswith("40/chat,"):
                client.answer = json.loads(frame[len("40/chat,"):])
                return client
            if frame.startswith("44/chat,"):
                client.refused = json.loads(frame[len("44/chat,"):])
                return client

    async def _read(self) -> str:
        frame = await asyncio.wait_for(self.ws.read_message(), 10)
        assert frame is not None, "the server closed the connection"
        if frame == "2":
            self.ws.write_message("3")
        elif frame.startswith("42/chat,"):
            event, *args = json.loads(frame[len("42/chat,"):])
            if event != "userStatusChanged":      # presence: volatile, never replayed
                self.events.append((event, args))
        return frame

    async def until_message(self, message_id: str) -> None:
        """Reads until the message ``message_id`` arrived (everything before it is recorded)."""
        while not any(e == "message" and args[0]["id"] == message_id for e, args in self.events):
            await self._read()

    def message_ids(self) -> list[str]:
        return [args[0]["id"] for event, args in self.events if event == "message"]

    def leave(self) -> None:
        """A voluntary disconnect of the namespace (the client's socket.disconnect())."""
        self.ws.write_message("41/chat,")

    def close(self) -> None:
        """The connection breaks (no disconnect packet)."""
        self.ws.close()
