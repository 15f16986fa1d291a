"""Two gaps of several processes on one Redis (docs/scaling.md), with real `nexus-chat serve`
processes, a real Redis and real sockets:

* events sent while Redis is down reach the live sockets of the other processes once Redis is
  back, once each, in order, without a reconnection; more than the fill's cap
  (redis.gap_fill_max_events): the other process's clients are made to reconnect, and recover
  them;
* a session that starts before a process's writer stored anything names that writer, so a
  recovery reads only what the client missed, not every event of the last minutes (counted
  in the database's own table statistics);
* the marks hash in Redis does not grow with every process start."""
from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
import redis.asyncio

from .chat_support import NO_PRESENCE, QUIET_S, make_group
from .recovery_support import RecoveringClient, connection, hold, resume
from .support import make_user
from .test_cluster_state import apis, cluster, connect, redis_server, until  # noqa: F401 (fixtures)

BUSY = 200     # events stored in the busy spell before the session starts


def texts(client) -> list[str]:
    return [message["content"] for message in client.of("message")]


async def redis_is(api, state: str) -> bool:
    return (await api.get("/api/health")).data.get("redis") == state


@pytest.mark.gen_test(timeout=150)
async def test_messages_sent_while_redis_is_down_reach_the_other_process_once_in_order(
        cluster, connect, apis, mail_sink, redis_server):  # noqa: F811
    if redis_server is None:
        pytest.skip("NEXUS_TEST_REDIS_URL: not our server to restart")
    a, b = cluster(2)
    api_a, api_b = apis(a), apis(b)
    user, sender = await make_user(api_a, mail_sink, "u"), await make_user(api_a, mail_sink, "s")
    member = await make_user(api_a, mail_sink, "m")
    group = await make_group(api_a, sender, [member])
    receiver = await connect(b, user, ignore=NO_PRESENCE)
    in_group = await connect(b, member, ignore=NO_PRESENCE)
    writer = await connect(a, sender, ignore=NO_PRESENCE)
    await writer.send("before", recipientId=user.id)
    await receiver.wait_until(lambda: texts(receiver) == ["before"], what="before")

    redis_server.stop()
    try:
        for api in (api_a, api_b):
            await until(lambda: redis_is(api, "down"), "both processes see Redis down")
        during = [f"during {i}" for i in range(5)]
        for text in during:
            await writer.send(text, recipientId=user.id)      # stored, delivered on A only
        await writer.send("group, during", groupId=group)
    finally:
        redis_server.start()                                   # empty: no marks either
    for api in (api_a, api_b):
        await until(lambda: redis_is(api, "up"), "both processes subscribed again", 20)
    await writer.send("after", recipientId=user.id)
    await writer.send("group, after", groupId=group)
    await receiver.wait_until(lambda: "after" in texts(receiver), timeout=15, what="after")
    await in_group.wait_until(lambda: "group, after" in texts(in_group), timeout=15, what="group, after")
    await asyncio.sleep(QUIET_S)
    assert texts(receiver) == ["before", *during, "after"]
    assert texts(in_group) == ["group, during", "group, after"]
    for client in (receiver, in_group):       # delivered live: the sockets never reconnected
        assert client.connected_times == 1 and not client.disconnected.is_set()


GAP_CAP = 3      # redis.gap_fill_max_events in the test of the cap


@pytest.mark.gen_test(timeout=150)
async def test_more_events_than_the_gap_fill_cap_make_the_other_process_s_clients_recover_them(
        cluster, connect, apis, mail_sink, redis_server, node_client):  # noqa: F811
    """A gap longer than the cap is not pushed to the sockets of B: B closes its connections,
    and the official client reconnects by itself and recovers every event it missed, once, in
    order."""
    if redis_server is None:
        pytest.skip("NEXUS_TEST_REDIS_URL: not our server to restart")
    a, b = cluster(2, NEXUS_RECOVERY="1", NEXUS_REDIS_GAP_FILL_MAX_EVENTS=str(GAP_CAP))
    api_a, api_b = apis(a), apis(b)
    user, sender = await make_user(api_a, mail_sink, "u"), await make_user(api_a, mail_sink, "s")
    client = await RecoveringClient.start(node_client, b.base_url, user.access, delay_ms=1000)
    try:
        first = await client.until(lambda i: i["type"] == "connect")
        writer = await connect(a, sender, ignore=NO_PRESENCE)
        await writer.send("before", recipientId=user.id)
        await client.wait(lambda: len(client.messages()) == 1)

        redis_server.stop()
        try:
            for api in (api_a, api_b):
                await until(lambda: redis_is(api, "down"), "both processes see Redis down")
            during = [f"during {i}" for i in range(GAP_CAP + 2)]
            for text in during:
                await writer.send(text, recipientId=user.id)      # stored, delivered on A only
        finally:
            redis_server.start()
        dropped = await client.until(lambda i: i["type"] == "disconnect", timeout=30)
        assert dropped["reason"] == "transport close"      # not the server's goodbye: it reconnects
        again = await client.until(lambda i: i["type"] in ("connect", "connect_error"), timeout=15)
        assert again["type"] == "connect" and again["recovered"] is True and again["id"] == first["id"]
        await writer.send("after", recipientId=user.id)
        await client.wait(lambda: "after" in [args[0]["content"] for args in client.messages()], timeout=15)
        with contextlib.suppress(asyncio.TimeoutError):     # nothing else comes
            await client.until(lambda i: i["type"] == "event" and i["event"] == "message", timeout=QUIET_S)
        assert [args[0]["content"] for args in client.messages()] == ["before", *during, "after"]
        assert writer.connected_times == 1 and not writer.disconnected.is_set()   # A had no gap
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def table_statistics(db_target):
    """MariaDB's per-table counters (userstat), on for the block; ``read()``: rows read so far
    from the event log's tables of this test's database."""
    async with connection(db_target) as conn:
        async with conn.cursor() as cur:
            await cur.execute("SELECT @@GLOBAL.userstat")
            [was_on] = await cur.fetchone()
            await cur.execute("SET GLOBAL userstat = 1")

        async def read() -> int:
            async with conn.cursor() as cur:
                await cur.execute("SELECT COALESCE(SUM(ROWS_READ), 0) FROM information_schema.TABLE_STATISTICS"
                                  " WHERE TABLE_SCHEMA = %s AND TABLE_NAME IN ('event_log', 'event_log_targets')",
                                  (db_target.name,))
                [count] = await cur.fetchone()
            return int(count)

        try:
            yield read
        finally:
            if not was_on:
                async with conn.cursor() as cur:
                    await cur.execute("SET GLOBAL userstat = 0")


async def busy_spell(api, mail_sink, connect, process, user) -> None:
    """``BUSY`` messages in a group of ``user``'s, sent on ``process`` (whose writer stores them)."""
    sender = await make_user(api, mail_sink, "busy")
    group = await make_group(api, sender, [user])
    chatty = await connect(process, sender, ignore=NO_PRESENCE)
    for i in range(BUSY):
        await chatty.send(f"busy {i}", groupId=group)


async def recover_reading(client, db_target, read, send_missed) -> tuple[list[str], int]:
    """The client drops; ``send_missed()`` sends it one message; it recovers. What it got
    after recovering, and how many event-log rows the database read meanwhile."""
    await hold(client, db_target)
    await send_missed()
    await asyncio.sleep(0.5)       # it reached the process the client recovers on, through Redis
    mark = len(client.seen)
    before = await read()
    again = await resume(client)
    assert again["type"] == "connect" and again["recovered"] is True
    await client.wait(lambda: len(client.messages(mark)) > 0)
    read_rows = await read() - before
    with contextlib.suppress(asyncio.TimeoutError):     # nothing else comes
        await client.until(lambda i: i["type"] == "event" and i["event"] == "message", timeout=QUIET_S)
    got = [args[0]["content"] for args in client.messages(mark)]
    return got, read_rows


@pytest.mark.parametrize("sender", ["own process", "process started later"])
@pytest.mark.gen_test(timeout=200)
async def test_a_writer_that_stored_nothing_when_the_session_began_is_named_and_recovered_cheaply(
        cluster, connect, apis, mail_sink, node_client, db_target, sender):  # noqa: F811
    """Everything so far was stored by A; the client's session starts on B after that busy
    spell. The one message it misses is the first of a writer that had stored nothing when the
    session began: B's own, or that of a process C started after the session (B knows from C's
    announcement where C's writer started). Recovering on B reads that one message, not every
    event of the last minutes."""
    a, b = cluster(2, NEXUS_RECOVERY="1")
    api = apis(a)
    user, other = await make_user(api, mail_sink, "u"), await make_user(api, mail_sink, "o")
    await busy_spell(api, mail_sink, connect, a, user)
    async with table_statistics(db_target) as read:
        client = await RecoveringClient.start(node_client, b.base_url, user.access)
        try:
            assert (await client.until(lambda i: i["type"] == "connect"))["recovered"] is False
            writer = b if sender == "own process" else cluster(1, NEXUS_RECOVERY="1")[0]
            on_writer = await connect(writer, other, ignore=NO_PRESENCE)
            got, read_rows = await recover_reading(client, db_target, read,
                                                   lambda: on_writer.send("missed", recipientId=user.id))
            assert got == ["missed"]
            assert read_rows < BUSY // 4, read_rows
        finally:
            await client.close()


@pytest.mark.gen_test(timeout=60)
async def test_marks_of_writers_quiet_longer_than_the_recovery_window_are_removed(cluster):  # noqa: F811
    """The marks hash gets a field per process start: a process that subscribes removes those
    of writers that published nothing for longer than any position can name them."""
    marks = redis.asyncio.Redis.from_url(cluster.redis_url)
    key = f"{cluster.redis_key}-marks"
    now = int(time.time())
    try:
        await marks.hset(key, mapping={"900001": f"5.{now - 86400}", "900002": f"6.{now - 60}.4"})
        [a] = cluster(1)
        await until(lambda: _fields_are(marks, key, 2), "a's own mark")
        fields = {k.decode() for k in await marks.hkeys(key)}
        assert "900001" not in fields and "900002" in fields      # and a's own writer
    finally:
        await marks.aclose()


async def _fields_are(marks, key: str, count: int) -> bool:
    return await marks.hlen(key) == count
