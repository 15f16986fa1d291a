"""The /chat namespace end to end (docs/realtime.md#client-events) with python-socketio's
AsyncClient over both transports: what each user receives, exactly, and nothing more."""
from __future__ import annotations

import asyncio

import pytest

from .support import assert_error
from .chat_support import NO_PRESENCE, TRANSPORTS, make_group, quiet

PARAMS = pytest.mark.parametrize("transports", list(TRANSPORTS.values()), ids=list(TRANSPORTS))


async def connect(chat, *users):
    """Websocket clients that ignore presence (for tests about messages)."""
    return [await chat(user, ["websocket"], ignore=NO_PRESENCE) for user in users]


def online(user) -> tuple[str, str]:
    return ("userStatusChanged", user.id, "online")


def presence(events) -> list[tuple[str, str, str]]:
    """Events as (name, userId, status): anything but a status change shows up as a mismatch."""
    return [(n, d.get("userId"), d.get("status")) for n, d in events]


@PARAMS
@pytest.mark.gen_test(timeout=60)
async def test_one_on_one_chat(api, user_factory, chat, transports):
    a, b = await user_factory("a"), await user_factory("b")
    ca = await chat(a, transports)
    cb = await chat(b, transports)
    assert ca.transport == cb.transport == "websocket"
    # strangers: each is told only about themselves
    assert presence(("userStatusChanged", d) for d in await ca.expect("userStatusChanged")) == [online(a)]
    assert presence(("userStatusChanged", d) for d in await cb.expect("userStatusChanged")) == [online(b)]

    sent = await ca.call("sendMessage", {"recipientId": b.id, "content": "  hello b  "})
    assert sent["content"] == "hello b" and sent["senderId"] == a.id and sent["sender"]["id"] == a.id
    assert "email" not in sent["sender"]
    assert await cb.expect("message") == [sent]
    reply = await cb.send("hello a", recipientId=a.id)
    assert reply["conversationId"] == sent["conversationId"]
    assert await ca.expect("message") == [reply]
    await quiet(ca, cb)   # a's own message did not come back to a; nothing else arrived

    receipt = await cb.call("markConversationAsRead", {"conversationId": sent["conversationId"],
                                                       "recipientId": a.id})
    # the older fields keep their meaning; groupId and readAt came with read pointers (issue 12)
    assert receipt == {"conversationId": sent["conversationId"], "lastReadMessageId": sent["id"],
                       "groupId": None, "readAt": receipt["readAt"]} and receipt["readAt"]
    assert await ca.expect("messageRead") == [{"conversationId": sent["conversationId"], "readBy": b.id,
                                               "lastReadMessageId": sent["id"], "groupId": None,
                                               "readAt": receipt["readAt"]}]
    # nothing new to read: acked again, but no receipt is sent
    assert await cb.call("markConversationAsRead", {"conversationId": sent["conversationId"]}) == receipt
    await quiet(ca, cb)

    await ca.emit("typing", {"recipientId": b.id, "isTyping": True})
    assert await cb.expect("typing") == [{"userId": a.id, "recipientId": b.id, "isTyping": True}]
    await quiet(ca, cb)

    history = await cb.call("getMessages", {"recipientId": a.id, "limit": 10})
    assert [m["id"] for m in history] == [reply["id"], sent["id"]]
    assert history[1]["isRead"] is True and history[0]["isRead"] is False

    # now partners: b going away is told to a
    await cb.close()
    [status] = await ca.expect("userStatusChanged")
    assert status["userId"] == b.id and status["status"] == "offline" and status["lastSeenAt"]
    await quiet(ca)


@PARAMS
@pytest.mark.gen_test(timeout=60)
async def test_group_of_five(api, user_factory, chat, transports):
    users = [await user_factory(f"g{i}") for i in range(5)]
    outsider = await user_factory("x")
    group_id = await make_group(api, users[0], users[1:])
    clients = [await chat(user, transports) for user in users]
    cx = await chat(outsider, ["websocket"])
    for i, client in enumerate(clients):
        await client.wait_for("userStatusChanged", 5 - i)
    await cx.wait_for("userStatusChanged")
    # each is told about themselves and about the co-members who came after them
    for i, client in enumerate(clients):
        assert presence(client.take()) == [online(u) for u in users[i:]]
    assert presence(cx.take()) == [online(outsider)]

    acks = [await client.send(f"hello from {i}", groupId=group_id) for i, client in enumerate(clients)]
    for client in clients:   # every socket in the room, the sender's included, in order
        assert await client.expect("message", 5) == acks
    assert all(ack["groupId"] == group_id and ack["conversationId"] is None for ack in acks)

    await clients[2].emit("typing", {"groupId": group_id, "isTyping": True})
    for i, client in enumerate(clients):
        if i != 2:
            assert await client.expect("typing") == [{"userId": users[2].id, "groupId": group_id,
                                                      "isTyping": True}]
    # the outsider cannot take part
    denied = await cx.call("sendMessage", {"groupId": group_id, "content": "let me in"})
    assert denied["statusCode"] == 403 and denied["message"] == "You are not a member of this group"
    denied = await cx.call("joinGroup", {"groupId": group_id})
    assert denied["statusCode"] == 403
    await cx.emit("typing", {"groupId": group_id, "isTyping": True})
    await cx.expect("exception", 3)
    history = await clients[4].call("getMessages", {"groupId": group_id})
    assert [m["id"] for m in history] == [a["id"] for a in reversed(acks)]
    await quiet(cx, *clients)


@pytest.mark.gen_test(timeout=60)
async def test_kicked_or_departed_member_stops_receiving_at_once(api, user_factory, chat):
    owner, stay, kicked, leaver = [await user_factory(p) for p in ("o", "s", "k", "l")]
    group_id = await make_group(api, owner, [stay, kicked, leaver])
    co, cs, ck, cl = await connect(chat, owner, stay, kicked, leaver)
    first = await co.send("all of you", groupId=group_id)
    for client in (cs, ck, cl):
        assert await client.expect("message") == [first]
    response = await api.delete(f"/api/groups/{group_id}/members/{kicked.id}", token=owner.access)
    assert response.status == 200, response.body
    response = await api.post(f"/api/groups/{group_id}/leave", token=leaver.access)
    assert response.status == 200, response.body
    for client in (co, cs, ck, cl):
        client.take()

    second = await co.send("only members now", groupId=group_id)
    assert await cs.expect("message") == [second]
    await quiet(ck, cl)
    for client in (ck, cl):
        for event, payload in (("sendMessage", {"groupId": group_id, "content": "hey"}),
                               ("joinGroup", {"groupId": group_id}),
                               ("getMessages", {"groupId": group_id})):
            answer = await client.call(event, payload)
            assert answer["success"] is False and answer["statusCode"] == 403, (event, answer)
        await client.expect("exception", 3)


@pytest.mark.gen_test(timeout=60)
async def test_invited_and_created_groups_are_live_without_reconnecting(api, user_factory, chat, runtime):
    owner, invitee = await user_factory("o"), await user_factory("i")
    co, ci = await connect(chat, owner, invitee)
    group_id = await make_group(api, owner, [])          # created while connected
    first = await co.send("just me", groupId=group_id)
    assert first in await co.wait_for("message")
    response = await api.post("/api/groups/invite", json={"groupId": group_id, "memberIds": [invitee.id]},
                              token=owner.access)
    assert response.status == 201, response.body
    second = await co.send("welcome", groupId=group_id)
    assert await ci.wait_for("message") == [second]
    room = f"group:{group_id}"
    assert {s.data["user_id"] for s in runtime.sockets.server.sockets_in_room("/chat", room)} == \
        {owner.id, invitee.id}
    response = await api.delete(f"/api/groups/{group_id}", token=owner.access)
    assert response.status == 200, response.body
    assert runtime.sockets.server.sockets_in_room("/chat", room) == []


@pytest.mark.gen_test(timeout=60)
async def test_leave_group_leaves_the_room_only(api, user_factory, chat):
    owner, member = await user_factory("o"), await user_factory("m")
    group_id = await make_group(api, owner, [member])
    co, cm = await connect(chat, owner, member)
    assert await cm.call("leaveGroup", {"groupId": group_id}) == {"groupId": group_id, "joined": False}
    cm.take()
    await co.send("not for the member's socket", groupId=group_id)
    await quiet(cm)
    mine = await cm.send("still a member", groupId=group_id)     # membership is unchanged
    assert await cm.call("joinGroup", {"groupId": group_id}) == {"groupId": group_id, "joined": True}
    cm.take()
    again = await co.send("back in the room", groupId=group_id)
    assert await cm.expect("message") == [again]
    assert mine["groupId"] == group_id


@pytest.mark.gen_test(timeout=60)
async def test_resent_client_message_id_makes_no_duplicate(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca, cb = await connect(chat, a, b)
    payload = {"recipientId": b.id, "content": "only once", "clientMessageId": "c-1"}
    first = await ca.call("sendMessage", payload)
    assert first["clientMessageId"] == "c-1"
    assert await cb.expect("message") == [first]
    assert await ca.call("sendMessage", payload) == first
    assert await ca.call("sendMessage", {**payload, "content": "changed"}) == first
    await quiet(ca, cb)
    history = await cb.call("getMessages", {"recipientId": a.id})
    assert [m["id"] for m in history] == [first["id"]]
    # the id is per sender
    theirs = await cb.call("sendMessage", {"recipientId": a.id, "content": "mine", "clientMessageId": "c-1"})
    assert theirs["id"] != first["id"]
    too_long = await ca.call("sendMessage", {**payload, "clientMessageId": "x" * 65})
    assert too_long["statusCode"] == 400


@pytest.mark.gen_test(timeout=60)
async def test_messages_reach_each_socket_in_commit_order(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    a1, a2, cb = await connect(chat, a, a, b)
    await asyncio.gather(
        *[a1.call("sendMessage", {"recipientId": b.id, "content": f"a{i}"}) for i in range(20)],
        *[cb.call("sendMessage", {"recipientId": a.id, "content": f"b{i}"}) for i in range(20)])
    history = list(reversed(await cb.call("getMessages", {"recipientId": a.id, "limit": 100})))
    assert len(history) == 40
    # a's second tab gets both directions, b gets a's, a's first tab gets b's: in commit order
    await a2.wait_for("message", 40)
    assert [m["id"] for m in a2.of("message")] == [m["id"] for m in history]
    await cb.wait_for("message", 20)
    assert [m["id"] for m in cb.of("message")] == [m["id"] for m in history if m["senderId"] == a.id]
    await a1.wait_for("message", 20)
    assert [m["id"] for m in a1.of("message")] == [m["id"] for m in history if m["senderId"] == b.id]
    assert [m["content"] for m in a1.of("message")] == [f"b{i}" for i in range(20)]


@pytest.mark.gen_test(timeout=60)
async def test_bad_payloads_get_an_exception_and_an_error_ack(api, user_factory, chat):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    ca, cb = await connect(chat, a, b)
    sent = await cb.send("b to c", recipientId=c.id)
    group_id = await make_group(api, c, [])
    cases = [
        ("sendMessage", "not an object", 400),
        ("sendMessage", None, 400),
        ("sendMessage", {"recipientId": b.id}, 400),
        ("sendMessage", {"recipientId": b.id, "content": "   "}, 400),
        ("sendMessage", {"recipientId": b.id, "content": "x" * 5001}, 400),
        ("sendMessage", {"recipientId": b.id, "groupId": group_id, "content": "both"}, 400),
        ("sendMessage", {"content": "no target"}, 400),
        ("sendMessage", {"recipientId": b.id, "content": "hi", "extra": 1}, 400),
        ("sendMessage", {"recipientId": a.id, "content": "myself"}, 400),
        ("sendMessage", {"recipientId": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "content": "ghost"}, 404),
        ("sendMessage", {"groupId": group_id, "content": "not mine"}, 403),
        ("getMessages", {"recipientId": b.id, "limit": 0}, 400),
        ("markConversationAsRead", {"conversationId": "nope"}, 400),
        ("markConversationAsRead", {"conversationId": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"}, 404),
        ("markConversationAsRead", {"conversationId": sent["conversationId"]}, 403),
        ("joinGroup", {"groupId": group_id}, 403),
        ("joinGroup", {}, 400),
        ("typing", {"recipientId": b.id}, 400),
        ("typing", {"recipientId": a.id, "isTyping": True}, 400),
        ("noSuchEvent", {}, 400),
    ]
    for event, payload, status in cases:
        answer = await ca.call(event, payload)
        assert answer["success"] is False and answer["statusCode"] == status, (event, payload, answer)
        assert isinstance(answer["error"], str) and answer["message"]
        notice = (await ca.wait_for("exception"))[0]
        assert notice["status"] == "error" and notice["statusCode"] == status and notice["event"] == event
        assert notice["message"] == answer["message"]
        assert ca.take() == [("exception", notice)]
    # without an ack the exception still arrives, and the socket stays usable
    await ca.emit("sendMessage", {"recipientId": b.id})
    assert (await ca.wait_for("exception"))[0]["statusCode"] == 400
    assert (await ca.send("still fine", recipientId=b.id))["content"] == "still fine"


@pytest.mark.gen_test(timeout=60)
async def test_unauthorized_connects_are_refused(api, user_factory, chat):
    a = await user_factory("a")
    refused = [
        {"auth": None},
        {"auth": {"token": "garbage"}},
        {"auth": {"token": a.refresh}},                          # not an access token
        {"auth": {"token": ""}, "headers": {"Authorization": "Basic abc"}},
    ]
    for kwargs in refused:
        client = await chat(a, ["websocket"], wait=False, **kwargs)
        with pytest.raises(Exception):
            await client.connect()
        assert client.connect_errors and client.connect_errors[-1]["message"] == "Unauthorized", kwargs
    accepted = [
        {"auth": {"token": f"Bearer {a.access}"}},
        {"auth": None, "headers": {"Authorization": f"Bearer {a.access}"}},
    ]
    for kwargs in accepted:
        client = await chat(a, ["websocket"], **kwargs)
        assert client.sio.connected
        await client.close()
    query = await chat(a, ["websocket"], wait=False, auth=None)
    query.base_url = f"{query.base_url}?token={a.access}"
    await query.connect()
    await query.close()


@pytest.mark.gen_test(timeout=60)
async def test_main_namespace_needs_no_token_and_other_namespaces_are_invalid(runtime, api):
    import socketio
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(runtime.base_url, namespaces=["/"], transports=["websocket"], wait_timeout=5)
    assert client.connected
    await client.disconnect()
    errors = []
    other = socketio.AsyncClient(reconnection=False)
    other.on("connect_error", lambda data: errors.append(data), namespace="/nope")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await other.connect(runtime.base_url, namespaces=["/nope"], transports=["websocket"], wait_timeout=5)
    assert errors == [{"message": "Invalid namespace"}]
    await other.disconnect()


@pytest.mark.gen_test(timeout=60)
async def test_handshake_origin_is_checked_against_cors_origins(api):
    path = "/socket.io/?EIO=4&transport=polling"
    allowed = await api.get(path, headers={"Origin": "http://localhost:3001"})
    assert allowed.status == 200 and allowed.body.startswith(b"0{")
    assert (await api.get(path)).status == 200                    # no Origin: not a browser
    denied = await api.get(path, headers={"Origin": "http://evil.example"})
    assert denied.status in (400, 403) and not denied.body.startswith(b"0{")


@pytest.mark.gen_test
async def test_handshake_errors_use_the_error_envelope(api):
    response = await api.get("/socket.io/", params={"EIO": "3", "transport": "polling"})
    body = assert_error(response, 400, "Unsupported protocol version")
    assert body["code"] == 5
    response = await api.get("/socket.io/", params={"EIO": "4", "transport": "polling", "sid": "nope"})
    assert assert_error(response, 400, "Session ID unknown")["code"] == 1
