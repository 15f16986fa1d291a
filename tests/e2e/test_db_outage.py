"""A real database outage: this module's server runs on a private MariaDB that the tests
stop and start again. During the outage the socket path answers like REST (503 and a
retry delay, in the ack envelope), the log says "down" once and "up" once with no
traceback, and a user who left meanwhile is stored offline once the database is back."""
from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path

import pytest

from nexus_chat.embedded_db import PrivateMariaDB
from nexus_chat.migrate import apply_migrations
from nexus_chat.runtime import DatabaseTarget

from .support import assert_error


@pytest.fixture(scope="module")
def outage_db():
    with tempfile.TemporaryDirectory(prefix="nexus-outage-db-") as tmp:
        server = PrivateMariaDB(Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def db_target(outage_db):
    """Overrides conftest's: this module's database lives on the server it may stop."""
    s = outage_db
    asyncio.run(apply_migrations(host=s.host, port=s.port, user=s.user, password=s.password,
                                 database="nexus_outage"))
    return DatabaseTarget(s.host, s.port, s.user, s.password, "nexus_outage")


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, text: str) -> list[str]:
        return [r.getMessage() for r in self.records if text in r.getMessage()]


@pytest.fixture
def server_log():
    logger = logging.getLogger("nexus_chat")
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


async def stored_status(runtime, user_id: str) -> str:
    row = await runtime.db.fetch_one("SELECT status FROM users WHERE id = %s", (user_id,))
    return row["status"]


async def in_thread(fn) -> None:
    await asyncio.get_running_loop().run_in_executor(None, fn)


@pytest.mark.gen_test(timeout=120)
async def test_socket_path_during_a_database_outage(runtime, api, user_factory, chat, outage_db,
                                                    server_log):
    a, b = await user_factory("a"), await user_factory("b")
    ca, cb = await chat(a, ["websocket"]), await chat(b, ["websocket"])
    first = await ca.send("before the outage", recipientId=b.id)   # a and b now know each other
    await cb.wait_for("message")
    assert await stored_status(runtime, a.id) == "online"

    await in_thread(outage_db.stop)
    try:
        acks = [await ca.call("sendMessage", {"recipientId": b.id, "content": f"lost {i}"})
                for i in range(20)]
        for ack in acks:
            assert ack["success"] is False and ack["statusCode"] == 503, ack
            assert ack["error"] == "Service Unavailable" and ack["retryAfter"] >= 1, ack
        notices = await ca.wait_for("exception", 20)
        assert {n["statusCode"] for n in notices} == {503}
        # REST says the same thing
        rest = assert_error(await api.get("/api/chat/recent-messages", token=a.access), 503)
        assert rest["message"] == acks[0]["message"]
        # a leaves while the database cannot record it
        await ca.close()
        await asyncio.sleep(0.3)
    finally:
        await in_thread(outage_db.start)

    deadline = time.monotonic() + 20
    while True:
        try:
            if await stored_status(runtime, a.id) == "offline":
                break
        except Exception:
            pass   # the pool may still hand out a connection that died with the old server
        assert time.monotonic() < deadline, "a left during the outage and is still stored online"
        await asyncio.sleep(0.1)
    # b, who talks with a, is told
    await cb.wait_until(lambda: any(d["userId"] == a.id and d["status"] == "offline"
                                    for d in cb.of("userStatusChanged")), what="a offline")

    # chatting works again, and nothing was stored for the refused messages
    again = await cb.send("after the outage", recipientId=a.id)
    assert again["conversationId"] == first["conversationId"]
    history = await api.get("/api/chat/messages", token=b.access, params={"recipientId": a.id})
    assert [m["content"] for m in history.data] == ["after the outage", "before the outage"]

    assert len(server_log.lines("database unavailable")) == 1, [r.getMessage() for r in server_log.records]
    assert len(server_log.lines("database available again")) == 1
    tracebacks = [r.getMessage() for r in server_log.records if r.exc_info]
    assert tracebacks == [], tracebacks
    assert not [r for r in server_log.records if r.levelno >= logging.ERROR]


@pytest.mark.gen_test(timeout=60)
async def test_connecting_during_an_outage_is_refused_with_503_and_no_traceback(
        runtime, user_factory, chat, outage_db, server_log):
    a = await user_factory("a")
    await in_thread(outage_db.stop)
    try:
        client = await chat(a, ["websocket"], wait=False)
        with pytest.raises(Exception):
            await client.connect()
        assert client.connect_errors, "the CONNECT was refused"
        assert client.connect_errors[0]["message"] == "The database is unavailable, please retry"
        assert client.connect_errors[0]["data"] == {"statusCode": 503, "retryAfter": 1}
    finally:
        await in_thread(outage_db.start)
    assert [r.getMessage() for r in server_log.records if r.exc_info] == []
