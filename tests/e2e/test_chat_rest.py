"""Chat REST (docs/api.md#chat): history with paging and `before`, recent conversations with
unread counts, validation, group membership, conversation uniqueness."""
from __future__ import annotations

import asyncio

import orjson
import pytest

from nexus_chat.services import chat as chat_service

from .chat_support import make_group
from .support import assert_error

MESSAGE_KEYS = {"id", "content", "senderId", "sender", "conversationId", "groupId", "isRead", "readAt",
                "clientMessageId", "createdAt", "updatedAt",
                # the message lifecycle and attachments add these; the older ones keep their meaning
                "editedAt", "deletedAt", "deletedBy", "replyTo", "reactions", "attachments"}
PUBLIC_KEYS = {"id", "username", "fullName", "avatarUrl", "bio", "status", "lastSeenAt"}


async def history(api, user, **params):
    response = await api.get("/api/chat/messages", params=params, token=user.access)
    assert response.status == 200, response.body
    return response.data


@pytest.mark.gen_test(timeout=60)
async def test_history_is_newest_first_with_limit_offset_and_before(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca, cb = await chat(a, ["websocket"]), await chat(b, ["websocket"])
    sent = []
    for i in range(25):
        sender, to = (ca, b) if i % 2 == 0 else (cb, a)
        sent.append(await sender.send(f"m{i}", recipientId=to.id))
    ids = [m["id"] for m in sent]

    page = await history(api, a, recipientId=b.id)
    assert [m["id"] for m in page] == ids[::-1][:20]          # default limit 20, newest first
    assert await history(api, b, recipientId=a.id) == page     # the same conversation either way
    first = page[0]
    assert set(first) == MESSAGE_KEYS and set(first["sender"]) == PUBLIC_KEYS
    assert first["content"] == "m24" and first["senderId"] == a.id and first["groupId"] is None
    assert first["conversationId"] == sent[0]["conversationId"]
    assert first["isRead"] is False and first["readAt"] is None and first["clientMessageId"] is None
    assert first["createdAt"].endswith("Z")
    assert b"email" not in orjson.dumps(page)

    assert [m["id"] for m in await history(api, a, recipientId=b.id, limit=5, offset=5)] == ids[::-1][5:10]
    assert [m["id"] for m in await history(api, a, recipientId=b.id, limit=100)] == ids[::-1]
    # `before` pages stably even while new messages arrive
    older = await history(api, a, recipientId=b.id, before=ids[10], limit=4)
    await ca.send("newer", recipientId=b.id)
    assert [m["id"] for m in older] == [ids[9], ids[8], ids[7], ids[6]]
    assert [m["id"] for m in await history(api, a, recipientId=b.id, before=ids[10], limit=4)] == \
        [m["id"] for m in older]
    assert [m["id"] for m in await history(api, a, recipientId=b.id, before=ids[10], limit=4, offset=8)] == \
        [ids[1], ids[0]]
    assert await history(api, a, recipientId=b.id, before=ids[0]) == []


@pytest.mark.gen_test(timeout=60)
async def test_no_conversation_yet_is_an_empty_list(api, user_factory):
    a, b = await user_factory("a"), await user_factory("b")
    assert await history(api, a, recipientId=b.id) == []
    assert await history(api, a, recipientId="8a7d1c8e-3c49-4d4e-9a11-3f6f7e0c1d2b") == []


@pytest.mark.gen_test(timeout=60)
async def test_validation_errors(api, user_factory, chat):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    ca = await chat(a, ["websocket"])
    with_c = await ca.send("to c", recipientId=c.id)
    bad = [
        ({}, "target"),
        ({"recipientId": b.id, "groupId": b.id}, "target"),
        ({"recipientId": "nope"}, "recipientId"),
        ({"recipientId": b.id, "limit": 0}, "limit"),
        ({"recipientId": b.id, "limit": 101}, "limit"),
        ({"recipientId": b.id, "limit": "x"}, "limit"),
        ({"recipientId": b.id, "offset": -1}, "offset"),
        ({"recipientId": b.id, "before": "x"}, "before"),
        ({"recipientId": b.id, "colour": "red"}, "colour"),
    ]
    for params, field in bad:
        response = await api.get("/api/chat/messages", params=params, token=a.access)
        body = assert_error(response, 400, "Validation failed")
        assert any(e.startswith(f"{field}:") for e in body["errors"]), (params, body)
    await ca.send("to b", recipientId=b.id)
    # `before` must be a message of this conversation
    response = await api.get("/api/chat/messages", params={"recipientId": b.id, "before": with_c["id"]},
                             token=a.access)
    assert_error(response, 400, "Validation failed")
    assert_error(await api.get("/api/chat/messages", params={"recipientId": b.id}), 401)
    assert_error(await api.get("/api/chat/recent-messages"), 401)


@pytest.mark.gen_test(timeout=60)
async def test_group_history_is_for_members_only(api, user_factory, chat):
    owner, member, outsider = await user_factory("o"), await user_factory("m"), await user_factory("x")
    group_id = await make_group(api, owner, [member])
    co, cm = await chat(owner, ["websocket"]), await chat(member, ["websocket"])
    one = await co.send("hello group", groupId=group_id)
    two = await cm.send("hi owner", groupId=group_id)
    for user in (owner, member):
        page = await history(api, user, groupId=group_id)
        assert [m["id"] for m in page] == [two["id"], one["id"]]
        assert page[0]["groupId"] == group_id and page[0]["conversationId"] is None
    response = await api.get("/api/chat/messages", params={"groupId": group_id}, token=outsider.access)
    assert_error(response, 403, "You are not a member of this group")
    response = await api.get("/api/chat/messages", params={"groupId": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"},
                             token=owner.access)
    assert_error(response, 403, "You are not a member of this group")
    # a member kicked out loses access at once
    kicked = await api.delete(f"/api/groups/{group_id}/members/{member.id}", token=owner.access)
    assert kicked.status == 200, kicked.body
    response = await api.get("/api/chat/messages", params={"groupId": group_id}, token=member.access)
    assert_error(response, 403, "You are not a member of this group")


@pytest.mark.gen_test(timeout=60)
async def test_recent_conversations_order_last_message_and_unread_count(api, user_factory, chat):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    ca, cb, cc = await chat(a, ["websocket"]), await chat(b, ["websocket"]), await chat(c, ["websocket"])
    assert (await api.get("/api/chat/recent-messages", token=a.access)).data == []

    await ca.send("a→b 1", recipientId=b.id)
    await ca.send("a→b 2", recipientId=b.id)
    await cc.send("c→a 1", recipientId=a.id)
    last_ab = await cb.send("b→a 1", recipientId=a.id)

    recent = (await api.get("/api/chat/recent-messages", token=a.access)).data
    assert [conv["recipient"]["id"] if conv["creator"]["id"] == a.id else conv["creator"]["id"]
            for conv in recent] == [b.id, c.id]
    ab, ac = recent
    assert set(ab) == {"id", "creator", "recipient", "lastMessage", "unreadCount", "createdAt", "updatedAt"}
    assert ab["creator"]["id"] == a.id and ab["recipient"]["id"] == b.id      # a wrote first
    assert set(ab["creator"]) == PUBLIC_KEYS
    assert ab["lastMessage"]["id"] == last_ab["id"] and ab["lastMessage"]["content"] == "b→a 1"
    assert ab["unreadCount"] == 1 and ac["unreadCount"] == 1
    assert ac["creator"]["id"] == c.id and ac["lastMessage"]["content"] == "c→a 1"
    assert b"email" not in orjson.dumps(recent)

    recent_b = (await api.get("/api/chat/recent-messages", token=b.access)).data
    assert len(recent_b) == 1 and recent_b[0]["id"] == ab["id"] and recent_b[0]["unreadCount"] == 2

    receipt = await cb.call("markConversationAsRead", {"conversationId": ab["id"]})
    last_from_a = (await history(api, b, recipientId=a.id))[1]["id"]
    # groupId and readAt came with read pointers (issue 12)
    assert receipt == {"conversationId": ab["id"], "lastReadMessageId": last_from_a,
                       "groupId": None, "readAt": receipt["readAt"]}
    recent_b = (await api.get("/api/chat/recent-messages", token=b.access)).data
    assert recent_b[0]["unreadCount"] == 0
    # new activity moves a conversation to the top
    await cc.send("c→a 2", recipientId=a.id)
    recent = (await api.get("/api/chat/recent-messages", token=a.access)).data
    assert [conv["id"] for conv in recent] == [ac["id"], ab["id"]]
    assert recent[0]["unreadCount"] == 2 and recent[0]["lastMessage"]["content"] == "c→a 2"
    page = await history(api, a, recipientId=b.id)
    assert [m["isRead"] for m in page] == [False, True, True]     # b read a's two messages
    assert page[1]["readAt"] is not None and page[0]["readAt"] is None


@pytest.mark.gen_test(timeout=60)
async def test_recent_conversations_show_the_last_message_as_history_does(api, user_factory, chat):
    """The list reads each last message with the conversations (one statement): a reply with
    the viewer's reaction and a deleted message come as the history shows them, to each viewer."""
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    ca, cc = await chat(a, ["websocket"]), await chat(c, ["websocket"])
    first = await ca.send("first", recipientId=b.id)
    reply = await ca.send("a reply", recipientId=b.id, replyToId=first["id"])
    reacted = await api.put(f"/api/chat/messages/{reply['id']}/reactions/%F0%9F%91%8D", token=b.access)
    assert reacted.status in (200, 201), reacted.body
    gone = await cc.send("soon deleted", recipientId=a.id)
    await cc.call("deleteMessage", {"messageId": gone["id"]})

    for viewer, partner in ((a, b), (b, a)):
        recent = {conv["id"]: conv for conv in (await api.get("/api/chat/recent-messages",
                                                              token=viewer.access)).data}
        shown = recent[first["conversationId"]]["lastMessage"]
        assert shown == (await history(api, viewer, recipientId=partner.id))[0]
        assert shown["replyTo"]["id"] == first["id"] and shown["reactions"][0]["count"] == 1
        assert shown["reactions"][0]["reactedByMe"] is (viewer is b)
    recent = (await api.get("/api/chat/recent-messages", token=a.access)).data
    assert [conv["id"] for conv in recent] == [gone["conversationId"], first["conversationId"]]
    assert recent[0]["lastMessage"] == (await history(api, a, recipientId=c.id))[0]
    assert recent[0]["lastMessage"]["deletedAt"] is not None and recent[0]["unreadCount"] == 0
    assert [conv["unreadCount"] for conv in (await api.get("/api/chat/recent-messages",
                                                            token=b.access)).data] == [2]


@pytest.mark.gen_test(timeout=90)
async def test_recent_conversations_read_in_two_halves_keep_one_order(api, user_factory, chat, monkeypatch):
    """The list is read as two statements, conversations split by id, and merged: wherever the
    split falls, every conversation comes once, latest activity first, with its own counts."""
    me = await user_factory("me")
    partners = [await user_factory(f"p{i}") for i in range(6)]
    clients = [await chat(p, ["websocket"]) for p in partners]
    conversation_of = {}
    for i, (partner, client) in enumerate(zip(partners, clients)):
        for n in range(i + 1):     # partner i sends i + 1 messages: unread i + 1
            sent = await client.send(f"{partner.id} {n}", recipientId=me.id)
        conversation_of[partner.id] = sent["conversationId"]
    for i in (3, 0, 4):            # then activity moves three of them up again: 4, 0, 3 lead
        await clients[i].send("again", recipientId=me.id)
    expected = [conversation_of[partners[i].id] for i in (4, 0, 3, 5, 2, 1)]
    unread = {conversation_of[p.id]: i + 1 + (i in (3, 0, 4)) for i, p in enumerate(partners)}
    ids = sorted(expected)
    for split in (ids[3], ids[1], ids[0], ids[-1] + "~", chat_service.RECENT_SPLIT):
        monkeypatch.setattr(chat_service, "RECENT_SPLIT", split)
        recent = (await api.get("/api/chat/recent-messages", token=me.access)).data
        assert [conv["id"] for conv in recent] == expected, split
        assert {conv["id"]: conv["unreadCount"] for conv in recent} == unread
        assert [conv["lastMessage"]["conversationId"] for conv in recent] == expected


@pytest.mark.gen_test(timeout=60)
async def test_a_conversation_is_unique_when_both_write_first_at_once(api, user_factory, chat, runtime):
    a, b = await user_factory("a"), await user_factory("b")
    ca, cb = await chat(a, ["websocket"]), await chat(b, ["websocket"])
    one, two = await asyncio.gather(ca.send("hi b", recipientId=b.id), cb.send("hi a", recipientId=a.id))
    assert one["conversationId"] == two["conversationId"]
    # straight through the service, several times at once, with nothing cached
    c, d = await user_factory("c"), await user_factory("d")
    results = await asyncio.gather(
        chat_service.send_message(runtime.ctx, c.id, recipient_id=d.id, content="race c"),
        chat_service.send_message(runtime.ctx, d.id, recipient_id=c.id, content="race d"),
        chat_service.send_message(runtime.ctx, c.id, recipient_id=d.id, content="race c2"),
    )
    assert len({r.message["conversationId"] for r in results}) == 1
    recent = (await api.get("/api/chat/recent-messages", token=c.access)).data
    assert len(recent) == 1 and len(await history(api, d, recipientId=c.id)) == 3


@pytest.mark.gen_test(timeout=60)
async def test_group_messages_of_a_deleted_account_stay_without_sender(api, user_factory, chat):
    owner, member = await user_factory("o"), await user_factory("m")
    group_id = await make_group(api, owner, [member])
    cm = await chat(member, ["websocket"])
    await cm.send("I will leave soon", groupId=group_id)
    deleted = await api.delete("/api/auth/delete-account", json={"password": member.password},
                               token=member.access)
    assert deleted.status == 200, deleted.body
    await cm.disconnected.wait()
    page = await history(api, owner, groupId=group_id)
    assert page[0]["content"] == "I will leave soon"
    assert page[0]["senderId"] is None and page[0]["sender"] is None
