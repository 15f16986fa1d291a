"""Replies (issue 12): `sendMessage` with `replyToId`; `replyTo` follows the original through
edits and deletes; a history page reads reactions and replies in one query each."""
from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

from .chat_support import NO_PRESENCE, make_group, quiet


async def connect(chat, *users):
    return [await chat(user, ["websocket"], ignore=NO_PRESENCE) for user in users]


@pytest.mark.gen_test(timeout=60)
async def test_reply_shows_the_original_through_edits_and_deletes(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca, cb = await connect(chat, a, b)
    original = await ca.send("x" * 90 + "0123456789" + "tail that is cut", recipientId=b.id)
    await cb.expect("message")
    reply = await cb.call("sendMessage", {"recipientId": a.id, "content": "answer", "replyToId": original["id"]})
    assert reply["replyTo"] == {"id": original["id"], "senderId": a.id, "sender": original["sender"],
                                "snippet": "x" * 90 + "0123456789", "deleted": False}
    assert await ca.expect("message") == [reply]

    edited = await api.patch(f"/api/chat/messages/{original['id']}", json={"content": "fixed"}, token=a.access)
    assert edited.status == 200, edited.body
    history = await ca.call("getMessages", {"recipientId": b.id})
    assert history[0]["id"] == reply["id"] and history[0]["replyTo"]["snippet"] == "fixed"

    await ca.call("deleteMessage", {"messageId": original["id"]})
    history = await cb.call("getMessages", {"recipientId": a.id})
    assert history[0]["replyTo"] == {**reply["replyTo"], "snippet": "", "deleted": True}
    # a reply to a tombstone is still a reply (a resend must not fail because of a delete)
    late = await cb.call("sendMessage", {"recipientId": a.id, "content": "late", "replyToId": original["id"]})
    assert late["replyTo"]["deleted"] is True


@pytest.mark.gen_test(timeout=60)
async def test_a_reply_stays_in_its_conversation_or_group(api, user_factory, chat):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    ca, cb, cc = await connect(chat, a, b, c)
    group_id = await make_group(api, a, [b])
    elsewhere = await cc.send("c to a", recipientId=a.id)
    in_group = await cb.send("in the group", groupId=group_id)
    ca.take(), cb.take(), cc.take()
    for payload in ({"recipientId": b.id, "content": "no", "replyToId": elsewhere["id"]},
                    {"recipientId": b.id, "content": "no", "replyToId": in_group["id"]},
                    {"groupId": group_id, "content": "no", "replyToId": elsewhere["id"]},
                    {"recipientId": b.id, "content": "no", "replyToId": str(uuid.uuid4())},
                    {"recipientId": b.id, "content": "no", "replyToId": "not-an-id"}):
        answer = await ca.call("sendMessage", payload)
        assert answer["statusCode"] == 400 and answer["errors"], (payload, answer)
        await ca.expect("exception")
    await quiet(ca, cb, cc)
    ok = await ca.call("sendMessage", {"groupId": group_id, "content": "yes", "replyToId": in_group["id"]})
    assert ok["replyTo"]["id"] == in_group["id"] and ok["replyTo"]["senderId"] == b.id


@pytest.mark.gen_test(timeout=90)
async def test_history_with_reactions_and_replies_is_not_n_plus_one(api, user_factory, chat, runtime):
    users = [await user_factory(f"u{i}") for i in range(3)]
    group_id = await make_group(api, users[0], users[1:])
    c0, c1, c2 = await connect(chat, *users)
    previous = None
    for i in range(30):
        payload = {"groupId": group_id, "content": f"m{i}"}
        if previous:
            payload["replyToId"] = previous
        previous = (await [c0, c1, c2][i % 3].call("sendMessage", payload))["id"]
        for emoji, user in zip(("\U0001F44D", "\U0001F525", ":ok:"), users):
            response = await api.put(f"/api/chat/messages/{previous}/reactions/{quote(emoji, safe='')}",
                                     token=user.access)
            assert response.status == 200, response.body

    db = runtime.db
    counted = {"n": 0}
    originals = {name: getattr(db, name) for name in ("fetch_one", "fetch_all", "execute")}

    def counting(fn):
        async def call(*args, **kwargs):
            counted["n"] += 1
            return await fn(*args, **kwargs)
        return call

    async def statements_for(limit: int) -> tuple[int, list]:
        counted["n"] = 0
        for name, fn in originals.items():
            setattr(db, name, counting(fn))
        try:
            response = await api.get("/api/chat/messages", params={"groupId": group_id, "limit": limit},
                                     token=users[1].access)
        finally:
            for name, fn in originals.items():
                setattr(db, name, fn)
        assert response.status == 200, response.body
        return counted["n"], response.data

    await statements_for(1)   # membership is looked up once, then cached
    small, _ = await statements_for(2)
    large, page = await statements_for(25)
    assert large == small <= 4, (small, large)
    assert len(page) == 25
    assert all(len(m["reactions"]) == 3 and m["replyTo"] is not None for m in page)
    assert page[0]["replyTo"]["id"] == page[1]["id"] and page[0]["replyTo"]["snippet"] == page[1]["content"]
    assert [r["reactedByMe"] for r in page[0]["reactions"]] == [False, True, False]
