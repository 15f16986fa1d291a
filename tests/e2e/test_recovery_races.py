"""Connection-state recovery under races: a message whose transaction commits after one sent
later (a real row lock holds it back), and the replay cap (`realtime.recovery_max_events`) at
its boundary, also with events arriving while the server is recovering the socket."""
from __future__ import annotations

import asyncio

import pytest

from .recovery_support import RECOVERY, newest, connection, hold, resume, row_lock

CAP = 4


def is_message(item: dict, message_id: str | None = None) -> bool:
    return (item["type"] == "event" and item["event"] == "message"
            and (message_id is None or item["args"][0]["id"] == message_id))


async def events_since(api, user, after: str) -> list[dict]:
    """Every event of the REST catch-up after ``after`` (all pages)."""
    found: list[dict] = []
    while True:
        page = (await api.get("/api/chat/events", params={"after": after, "limit": 2}, token=user.access)).data
        found += page["events"]
        after = page["nextAfter"]
        if not page["hasMore"]:
            return found


async def seqs(db_target, *message_ids: str) -> list[int]:
    """The messages' numbers (AUTO_INCREMENT), as the database handed them out."""
    async with connection(db_target) as conn, conn.cursor() as cur:
        marks = ", ".join(["%s"] * len(message_ids))
        await cur.execute(f"SELECT id, seq FROM messages WHERE id IN ({marks})", message_ids)
        by_id = dict(await cur.fetchall())
    return [by_id[i] for i in message_ids]


@pytest.mark.parametrize("setting_overrides", [RECOVERY])
@pytest.mark.gen_test(timeout=120)
async def test_a_message_that_commits_late_is_replayed_not_skipped(api, user_factory, chat, recovering,
                                                                    db_target):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    js = await recovering(a)
    first = await js.until(lambda i: i["type"] == "connect")
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))
    cc = await chat(c, ["websocket"], ignore=("userStatusChanged",))
    hello = await cb.send("hello", recipientId=a.id)            # the conversation exists
    await js.until(lambda i: is_message(i, hello["id"]))
    start = (await api.get("/api/chat/events", token=a.access)).data["nextAfter"]

    # b's INSERT waits for b's row (its foreign key) while c's message, sent after it,
    # commits and reaches a; a then drops, and b's message commits while a is away.
    async with row_lock(db_target, "SELECT id FROM users WHERE id = %s FOR UPDATE", (b.id,)) as lock:
        late = asyncio.ensure_future(cb.send("sent first, committed late", recipientId=a.id))
        await lock.waited_on()
        early = await cc.send("sent second, committed first", recipientId=a.id)
        seen_early = await js.until(lambda i: is_message(i, early["id"]))
        await hold(js, db_target)
    late = await late
    late_seq, early_seq = await seqs(db_target, late["id"], early["id"])
    assert late_seq < early_seq          # the number was handed out before the commit

    again = await resume(js)
    assert again["type"] == "connect" and again["recovered"] is True and again["id"] == first["id"]
    await js.until(lambda i: is_message(i, late["id"]))
    marker = await cc.send("after recovery", recipientId=a.id)
    await js.until(lambda i: is_message(i, marker["id"]))
    got = js.messages()[1:]
    assert [args[0]["id"] for args in got] == [early["id"], late["id"], marker["id"]]   # each once
    offsets = [newest(args[1]) for args in got]
    assert offsets == sorted(offsets) and newest(seen_early["args"][1]) < offsets[1]

    # Over REST, from before both and from the offset a held: the same order, nothing twice.
    everything = [e["data"]["id"] for e in await events_since(api, a, start) if e["event"] == "message"]
    assert everything == [early["id"], late["id"], marker["id"]]
    after_early = [e["data"]["id"] for e in await events_since(api, a, seen_early["args"][1])
                   if e["event"] == "message"]
    assert after_early == [late["id"], marker["id"]]

    # The client comes back while a message is still held: it recovers what committed, and
    # the held one arrives live once it commits, after the replay.
    await hold(js, db_target)
    mark = len(js.seen)
    async with row_lock(db_target, "SELECT id FROM users WHERE id = %s FOR UPDATE", (b.id,)) as lock:
        late = asyncio.ensure_future(cb.send("held while a recovers", recipientId=a.id))
        await lock.waited_on()
        early = await cc.send("committed while a is away", recipientId=a.id)
        again = await resume(js)
        assert again["recovered"] is True
        await js.until(lambda i: is_message(i, early["id"]))
    late = await late
    await js.until(lambda i: is_message(i, late["id"]))
    marker = await cc.send("after the held one", recipientId=a.id)
    await js.until(lambda i: is_message(i, marker["id"]))
    assert [args[0]["id"] for args in js.messages(mark)] == [early["id"], late["id"], marker["id"]]


async def missed_while_held(js, db_target, send, count: int) -> list[dict]:
    await hold(js, db_target)
    return [await send(i) for i in range(count)]


@pytest.mark.parametrize("setting_overrides", [{**RECOVERY, "realtime_recovery_max_events": CAP}])
@pytest.mark.gen_test(timeout=120)
async def test_the_replay_cap_recovers_exactly_cap_events_and_nothing_past_it(api, user_factory, chat,
                                                                               recovering, db_target):
    a, b = await user_factory("a"), await user_factory("b")
    js = await recovering(a)
    first = await js.until(lambda i: i["type"] == "connect")
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))

    async def send(i: int) -> dict:
        return await cb.send(f"missed {i}", recipientId=a.id)

    # Exactly the cap: recovered, every event once, in order.
    missed = await missed_while_held(js, db_target, send, CAP)
    mark = len(js.seen)
    again = await resume(js)
    assert again["recovered"] is True and again["id"] == first["id"]
    await js.wait(lambda: len(js.messages(mark)) == CAP)
    last_offset = js.messages(mark)[-1][1]

    # One more than the cap: a new session, told so, and not one of them replayed.
    missed = await missed_while_held(js, db_target, send, CAP + 1)
    mark = len(js.seen)
    again = await resume(js)
    assert again["type"] == "connect" and again["recovered"] is False and again["id"] != first["id"]
    marker = await cb.send("live, after the new session", recipientId=a.id)
    await js.until(lambda i: is_message(i, marker["id"]))
    assert [args[0]["id"] for args in js.messages(mark)] == [marker["id"]]
    rest = [e["data"]["id"] for e in await events_since(api, a, last_offset) if e["event"] == "message"]
    assert rest == [m["id"] for m in missed] + [marker["id"]]

    # a's own message (its ack, not an event of this socket) sits among the missed ones and
    # does not count: one more than the cap after it is still one more.
    await js.send("from a", recipientId=b.id)
    missed = await missed_while_held(js, db_target, send, CAP + 1)
    mark = len(js.seen)
    again = await resume(js)
    assert again["type"] == "connect" and again["recovered"] is False

    # Dropped again before any event of the new session: the client still holds the offset of
    # the old one, which reaches back past what it is to fetch over REST. The new session
    # recovers from where it started: one event, not the cap + 2.
    missed = await missed_while_held(js, db_target, send, 1)
    again = await resume(js)
    assert again["recovered"] is True
    marker = await cb.send("live, after the next new session", recipientId=a.id)
    await js.until(lambda i: is_message(i, marker["id"]))
    assert [args[0]["id"] for args in js.messages(mark)] == [missed[0]["id"], marker["id"]]


@pytest.mark.parametrize("setting_overrides", [{**RECOVERY, "realtime_recovery_max_events": CAP}])
@pytest.mark.gen_test(timeout=120)
async def test_events_arriving_while_the_socket_is_recovered_count_or_come_live(api, user_factory, chat,
                                                                                 recovering, runtime,
                                                                                 monkeypatch, db_target):
    """The server looks at the missed events (`fits`), then takes the old id, joins the rooms
    and replays what came before that moment. Events sent between the look and the rooms
    were missed too and count for the cap; events after it come live, after the replay."""
    a, b = await user_factory("a"), await user_factory("b")
    js = await recovering(a)
    await js.until(lambda i: i["type"] == "connect")
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))
    recovery = runtime.sockets.chat.recovery
    start = (await api.get("/api/chat/events", token=a.access)).data["nextAfter"]
    sent: list[dict] = []

    async def send(i: int) -> dict:
        message = await cb.send(f"message {len(sent)}", recipientId=a.id)
        sent.append(message)
        return message

    def during(method: str, count: int, *, after: bool):
        """``count`` messages sent (and delivered) just after (or before) ``recovery.method``."""
        original = getattr(recovery, method)

        async def wrapped(*args, **kwargs):
            if not after:
                for i in range(count):
                    await send(i)
            result = await original(*args, **kwargs)
            if after:
                for i in range(count):
                    await send(i)
            return result
        monkeypatch.setattr(recovery, method, wrapped)

    # cap - 1 missed, then 3 more while recovering: cap + 2 in all: no recovery, no partial replay.
    await missed_while_held(js, db_target, send, CAP - 1)
    during("fits", 3, after=True)
    mark = len(js.seen)
    again = await resume(js)
    assert again["type"] == "connect" and again["recovered"] is False
    monkeypatch.undo()
    marker = await send(0)
    await js.until(lambda i: is_message(i, marker["id"]))
    assert [args[0]["id"] for args in js.messages(mark)] == [marker["id"]]
    rest = [e["data"]["id"] for e in await events_since(api, a, start) if e["event"] == "message"]
    assert rest == [m["id"] for m in sent]          # what was not replayed, over REST

    # cap - 1 missed, then one more while recovering: exactly the cap: all of them, once.
    await missed_while_held(js, db_target, send, CAP - 1)
    during("fits", 1, after=True)
    mark, first_missed = len(js.seen), len(sent)
    again = await resume(js)
    assert again["recovered"] is True
    monkeypatch.undo()
    missed = sent[first_missed - (CAP - 1):]
    await js.wait(lambda: len(js.messages(mark)) >= CAP)
    marker = await send(0)
    await js.until(lambda i: is_message(i, marker["id"]))
    assert [args[0]["id"] for args in js.messages(mark)] == [m["id"] for m in missed + [marker]]

    # The cap missed, and two more once the rooms are joined (while the replay is read):
    # those come live, after the replay, and do not count.
    await missed_while_held(js, db_target, send, CAP)
    during("finish", 2, after=False)
    mark, first_missed = len(js.seen), len(sent)
    again = await resume(js)
    assert again["recovered"] is True
    monkeypatch.undo()
    wanted = sent[first_missed - CAP:]
    await js.wait(lambda: len(js.messages(mark)) >= CAP + 2)
    marker = await send(0)
    await js.until(lambda i: is_message(i, marker["id"]))
    got = js.messages(mark)
    assert [args[0]["id"] for args in got] == [m["id"] for m in wanted + [marker]]
    assert [newest(args[1]) for args in got] == sorted(newest(args[1]) for args in got)
