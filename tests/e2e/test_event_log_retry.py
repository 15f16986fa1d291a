"""The event log when storing a batch fails for a reason a retry fixes: the writer's link to
the database breaks while its INSERT waits (a real table lock holds it, and the test kills
that connection). The message has committed; its event must still reach the log, so that
the REST catch-up and connection-state recovery have it, and its receiver gets it once."""
from __future__ import annotations

import asyncio

import pytest

from .recovery_support import connection

WAITING_INSERT = ("SELECT id FROM information_schema.PROCESSLIST"
                  " WHERE db = %s AND info LIKE 'INSERT INTO event_log %%'")


async def events_after(api, user, after: str) -> list[dict]:
    page = (await api.get("/api/chat/events", params={"after": after, "limit": 100}, token=user.access)).data
    assert not page["hasMore"]
    return page["events"]


async def waiting_insert(cur, db_name: str) -> int:
    """The id of the connection whose event-log INSERT waits on the lock."""
    for _ in range(200):
        await cur.execute(WAITING_INSERT, (db_name,))
        row = await cur.fetchone()
        if row is not None:
            return int(row[0])
        await asyncio.sleep(0.05)
    raise AssertionError("the event log's INSERT never waited on the lock")


@pytest.mark.gen_test(timeout=120)
async def test_a_batch_whose_database_link_breaks_is_stored_on_a_retry(api, user_factory, chat, db_target):
    a, b = await user_factory("a"), await user_factory("b")
    ca = await chat(a, ["websocket"], ignore=("userStatusChanged",))
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))
    hello = await cb.send("hello", recipientId=a.id)
    await ca.wait_for("message")
    start = (await api.get("/api/chat/events", token=a.access)).data["nextAfter"]
    assert [e["data"]["id"] for e in await events_after(api, a, "0")] == [hello["id"]]

    async with connection(db_target) as conn, conn.cursor() as cur:
        await cur.execute("LOCK TABLES event_log WRITE, event_log_targets WRITE")
        try:
            sent = asyncio.ensure_future(cb.send("stored while the log was locked", recipientId=a.id))
            await cur.execute(f"KILL CONNECTION {await waiting_insert(cur, db_target.name)}")
        finally:
            await cur.execute("UNLOCK TABLES")
    sent = await sent                      # the message itself committed before its event waited

    got = await ca.wait_for("message", count=2)
    assert [message["id"] for message in got] == [hello["id"], sent["id"]]   # delivered once
    caught_up = await events_after(api, a, start)
    assert [(e["event"], e["data"]["id"]) for e in caught_up] == [("message", sent["id"])]

    after = await cb.send("after the retry", recipientId=a.id)
    await ca.wait_for("message", count=3)
    assert [e["data"]["id"] for e in await events_after(api, a, start)] == [sent["id"], after["id"]]
