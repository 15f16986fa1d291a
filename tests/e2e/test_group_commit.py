"""Group commit (issue 15, nexus_chat/message_writer.py): concurrent sends share one multi-row
INSERT, and still each message is stored once, in order per conversation, acked only after its
commit, and failed alone (a reused clientMessageId, a recipient or group gone meanwhile, an
attachment that is not the sender's) without failing the others of its batch."""
from __future__ import annotations

import asyncio

import pymysql
import pytest

from nexus_chat.errors import ApiError
from nexus_chat.services import chat as chat_service

from .chat_support import NO_PRESENCE, make_group
from .recovery_support import row_lock
from .test_attachments import uploaded


def query(db_target, sql: str, args=()) -> list[tuple]:
    """The test's own connection: what is committed, as any other client sees it."""
    conn = pymysql.connect(host=db_target.host, port=db_target.port, user=db_target.user,
                           password=db_target.password, database=db_target.name, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def stored(db_target, *, conversation_id: str | None = None, group_id: str | None = None) -> list[tuple]:
    """(id, content) of a chat's messages in commit order (seq)."""
    column, value = ("conversation_id", conversation_id) if conversation_id else ("group_id", group_id)
    return query(db_target, f"SELECT id, content FROM messages WHERE {column} = %s ORDER BY seq", (value,))


async def send(client, content: str, **target) -> dict:
    """`sendMessage` with a generous ack timeout: the box is shared, the order is the point."""
    ack = await client.call("sendMessage", {"content": content, **target}, timeout=30)
    assert isinstance(ack, dict) and ack.get("id"), ack
    return ack


async def outcome(coro):
    """The sent message, or the ApiError it was answered with."""
    try:
        return await coro
    except ApiError as exc:
        return exc


# With a window, flushes start on a timer instead of as soon as the previous one ends.
@pytest.mark.parametrize("setting_overrides", [{}, {"chat_group_commit_window_ms": 20}], ids=["window 0", "window 20 ms"])
@pytest.mark.gen_test(timeout=90)
async def test_concurrent_sends_are_stored_once_in_order_and_delivered_in_that_order(
        api, user_factory, chat, db_target):
    users = [await user_factory(f"u{i}") for i in range(6)]
    group_id = await make_group(api, users[0], users[1:3])
    clients = [await chat(user, ["websocket"], ignore=NO_PRESENCE) for user in users]
    pairs = [(0, 1), (2, 3), (4, 5)]
    conversation = {}
    for a, b in pairs:   # the conversations exist (their first message is not the point here)
        first = await clients[a].send("hello", recipientId=users[b].id)
        conversation[a, b] = first["conversationId"]
    for client in clients:
        client.take()

    # Every user sends 15 messages to their partner without waiting for the acks, the first
    # three users also 5 to the group: 105 sends in flight over 6 sockets at once.
    def sends(i: int):
        partner = next(b if a == i else a for a, b in pairs if i in (a, b))
        jobs = [send(clients[i], f"{i}:{n}", recipientId=users[partner].id) for n in range(15)]
        if i < 3:
            jobs += [send(clients[i], f"{i}:g{n}", groupId=group_id) for n in range(5)]
        return jobs
    acks = await asyncio.gather(*[job for i in range(6) for job in sends(i)])
    assert len({ack["id"] for ack in acks}) == len(acks) == 105

    for a, b in pairs:
        rows = stored(db_target, conversation_id=conversation[a, b])[1:]   # after "hello"
        contents = [content for _, content in rows]
        assert sorted(contents) == sorted([f"{a}:{n}" for n in range(15)] + [f"{b}:{n}" for n in range(15)])
        for sender in (a, b):   # each sender's messages in the order sent
            assert [c for c in contents if c.startswith(f"{sender}:")] == [f"{sender}:{n}" for n in range(15)]
        # each side receives the other's messages in commit order; its own come back as acks
        for me, other in ((a, b), (b, a)):
            await clients[me].wait_for("message", 15, timeout=30)
            got = [m["content"] for m in clients[me].of("message") if m["conversationId"]]
            assert got == [c for c in contents if c.startswith(f"{other}:")]
    rows = [content for _, content in stored(db_target, group_id=group_id)]
    assert sorted(rows) == sorted(f"{i}:g{n}" for i in range(3) for n in range(5))
    for i in range(3):   # every member gets every group message (its own too), in commit order
        assert [c for c in rows if c.startswith(f"{i}:")] == [f"{i}:g{n}" for n in range(5)]
        await clients[i].wait_for("message", 15 + 15, timeout=30)
        assert [m["content"] for m in clients[i].of("message") if m["groupId"]] == rows


@pytest.mark.gen_test(timeout=60)
async def test_sends_at_once_share_one_insert(user_factory, runtime, db_target):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    ctx = runtime.ctx
    await chat_service.send_message(ctx, a.id, recipient_id=b.id, content="first a→b")
    await chat_service.send_message(ctx, a.id, recipient_id=c.id, content="first a→c")
    batches = ctx.messages.batches
    sent = await asyncio.gather(*[
        chat_service.send_message(ctx, a.id, recipient_id=(b.id, c.id)[n % 2], content=f"n{n}")
        for n in range(20)])
    assert ctx.messages.batches == batches + 1 and ctx.messages.largest_batch >= 20
    assert all(s.created for s in sent)
    to_b = [content for _, content in stored(db_target, conversation_id=sent[0].message["conversationId"])]
    assert to_b == ["first a→b"] + [f"n{n}" for n in range(0, 20, 2)]


@pytest.mark.gen_test(timeout=60)
async def test_a_reused_client_message_id_in_a_batch_fails_nothing_else(user_factory, runtime, db_target):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    ctx = runtime.ctx
    earlier = await chat_service.send_message(ctx, a.id, recipient_id=b.id, content="earlier",
                                              client_message_id="k-old")
    warm = await chat_service.send_message(ctx, a.id, recipient_id=c.id, content="warm")
    batches = ctx.messages.batches

    def send(content: str, key: str | None, to=b):
        return outcome(chat_service.send_message(ctx, a.id, recipient_id=to.id, content=content,
                                                 client_message_id=key))
    results = await asyncio.gather(
        send("one", "k-1"), send("one again", "k-1"),     # the same key twice in the batch
        send("two", "k-2"), send("old again", "k-old"),   # a key stored before
        send("elsewhere", "k-1", to=c),                   # the batch's key, another recipient
        send("three", None))
    assert ctx.messages.batches == batches + 1            # they were one batch
    one, one_again, two, old_again, elsewhere, three = results
    assert one.created and two.created and three.created
    assert not one_again.created and one_again.message == one.message
    assert not old_again.created and old_again.message["id"] == earlier.message["id"]
    assert isinstance(elsewhere, ApiError) and elsewhere.status == 409
    contents = [content for _, content in stored(db_target, conversation_id=one.message["conversationId"])]
    assert contents == ["earlier", "one", "two", "three"]
    assert stored(db_target, conversation_id=warm.message["conversationId"]) == [(warm.message["id"], "warm")]


@pytest.mark.gen_test(timeout=60)
async def test_a_recipient_or_group_gone_meanwhile_fails_only_its_own_message(api, user_factory, runtime,
                                                                                db_target):
    a, b, c, d = [await user_factory(p) for p in ("a", "b", "c", "d")]
    ctx = runtime.ctx
    group_id = await make_group(api, a, [d])
    doomed_group = await make_group(api, a, [d])
    for recipient in (b, c):
        await chat_service.send_message(ctx, a.id, recipient_id=recipient.id, content="warm")
    await chat_service.send_message(ctx, a.id, group_id=group_id, content="warm")
    await chat_service.send_message(ctx, a.id, group_id=doomed_group, content="warm")
    # Gone behind the server's back (its caches still know them): the INSERT finds out.
    query(db_target, "DELETE FROM users WHERE id = %s", (b.id,))
    query(db_target, "DELETE FROM chat_groups WHERE id = %s", (doomed_group,))
    batches = ctx.messages.batches
    to_b, to_c, to_group, to_doomed, to_c_again = await asyncio.gather(
        outcome(chat_service.send_message(ctx, a.id, recipient_id=b.id, content="to b")),
        outcome(chat_service.send_message(ctx, a.id, recipient_id=c.id, content="to c")),
        outcome(chat_service.send_message(ctx, a.id, group_id=group_id, content="to group")),
        outcome(chat_service.send_message(ctx, a.id, group_id=doomed_group, content="to doomed")),
        outcome(chat_service.send_message(ctx, a.id, recipient_id=c.id, content="to c again")))
    assert ctx.messages.batches == batches + 1
    assert isinstance(to_b, ApiError) and (to_b.status, to_b.message) == (404, "Recipient not found")
    assert isinstance(to_doomed, ApiError) and to_doomed.status == 403
    assert to_c.created and to_group.created and to_c_again.created
    assert [content for _, content in stored(db_target, conversation_id=to_c.message["conversationId"])] == [
        "warm", "to c", "to c again"]
    assert [content for _, content in stored(db_target, group_id=group_id)] == ["warm", "to group"]
    # (this test's sender only: the suite's database holds other tests' messages "to b")
    assert query(db_target, "SELECT COUNT(*) FROM messages WHERE sender_id = %s"
                 " AND content IN ('to b', 'to doomed')", (a.id,)) == [(0,)]
    # and the server learnt it: the next send to b is refused before any INSERT
    again = await outcome(chat_service.send_message(ctx, a.id, recipient_id=b.id, content="to b again"))
    assert isinstance(again, ApiError) and again.status == 404


@pytest.mark.gen_test(timeout=60)
async def test_attachments_are_claimed_with_their_message_inside_a_batch(api, user_factory, runtime, db_target):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    ctx = runtime.ctx
    mine = await uploaded(api, a, b"notes of a", "notes.txt")
    theirs = await uploaded(api, c, b"notes of c", "theirs.txt")
    await chat_service.send_message(ctx, a.id, recipient_id=b.id, content="warm")
    batches = ctx.messages.batches
    before, with_file, stolen, after = await asyncio.gather(
        outcome(chat_service.send_message(ctx, a.id, recipient_id=b.id, content="before")),
        outcome(chat_service.send_message(ctx, a.id, recipient_id=b.id, content="file",
                                          attachment_ids=[mine["id"]])),
        outcome(chat_service.send_message(ctx, a.id, recipient_id=b.id, content="stolen",
                                          attachment_ids=[theirs["id"]])),
        outcome(chat_service.send_message(ctx, a.id, recipient_id=b.id, content="after")))
    assert ctx.messages.batches == batches + 1
    assert isinstance(stolen, ApiError) and stolen.status == 400
    assert [x["id"] for x in with_file.message["attachments"]] == [mine["id"]]
    assert [content for _, content in stored(db_target, conversation_id=before.message["conversationId"])] == [
        "warm", "before", "file", "after"]
    assert query(db_target, "SELECT message_id FROM attachments WHERE id IN (%s, %s) ORDER BY uploader_id = %s",
                 (mine["id"], theirs["id"], c.id)) == [(with_file.message["id"],), (None,)]


@pytest.mark.gen_test(timeout=60)
async def test_the_ack_waits_for_the_commit_and_a_blocked_batch_holds_up_no_other_chat(
        user_factory, chat, db_target):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    ca, cb, cc = [await chat(user, ["websocket"], ignore=NO_PRESENCE) for user in (a, b, c)]
    await cb.send("hello a", recipientId=a.id)
    await cc.send("hello a", recipientId=a.id)
    await ca.wait_for("message", 2)
    ca.take()
    # b's row is locked by another transaction: the INSERT of b's message waits for it (its
    # foreign key), and so do the ack and the delivery.
    async with row_lock(db_target, "SELECT id FROM users WHERE id = %s FOR UPDATE", (b.id,)) as lock:
        late = asyncio.ensure_future(send(cb, "held back", recipientId=a.id))
        await lock.waited_on(timeout=20)
        assert not late.done() and ca.of("message") == []
        assert query(db_target, "SELECT COUNT(*) FROM messages WHERE sender_id = %s AND content = 'held back'",
                     (b.id,)) == [(0,)]
        # another chat's message is not queued behind the blocked one
        early = await send(cc, "not held back", recipientId=a.id)
        assert [m["id"] for m in await ca.wait_for("message", timeout=30)] == [early["id"]]
        assert not late.done()
    late = await late
    assert query(db_target, "SELECT id FROM messages WHERE content = 'held back'") == [(late["id"],)]
    assert [m["id"] for m in await ca.wait_for("message", 2, timeout=30)] == [early["id"], late["id"]]


@pytest.mark.gen_test(timeout=60)
async def test_senders_profiles_missing_from_the_cache_are_read_together(user_factory, runtime, db_target):
    """The sender's profile in each message is the stored one, and when the cache no longer
    holds the senders' profiles, concurrent sends read them in one or two queries, not one each."""
    users = [await user_factory(f"p{i}") for i in range(8)]
    ctx = runtime.ctx
    pairs = [(users[i], users[(i + 1) % 8]) for i in range(8)]
    for sender, recipient in pairs:   # conversations exist and are cached
        await chat_service.send_message(ctx, sender.id, recipient_id=recipient.id, content="warm")
    query(db_target, "UPDATE users SET bio = CONCAT('bio of ', username) WHERE id IN (%s, %s, %s, %s, %s, %s, %s, %s)",
          tuple(u.id for u in users))
    for user in users:
        ctx.chat_cache.forget_profile(user.id)
    reads = ctx.profile_reads.batches
    sent = await asyncio.gather(*[chat_service.send_message(ctx, s.id, recipient_id=r.id, content="hi")
                                  for s, r in pairs])
    assert ctx.profile_reads.batches - reads <= 2
    for (sender, _), message in zip(pairs, sent):
        assert message.message["sender"]["id"] == sender.id
        assert message.message["sender"]["bio"] == f"bio of {message.message['sender']['username']}"
