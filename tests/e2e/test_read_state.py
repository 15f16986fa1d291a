"""Read state for groups and 1-on-1 alike (issue 12): one pointer per member and chat, only
forward; `messageRead` to the others and the reader's other sockets; receipts and unread
counts from the pointers; the inbox."""
from __future__ import annotations

import uuid

import pymysql
import pytest

from .chat_support import NO_PRESENCE, make_group, quiet
from .support import assert_error


async def connect(chat, *users):
    return [await chat(user, ["websocket"], ignore=NO_PRESENCE) for user in users]


async def receipts(api, user, message_id):
    response = await api.get(f"/api/chat/messages/{message_id}/receipts", token=user.access)
    assert response.status == 200, response.body
    return response.data


async def inbox(api, user, **params):
    response = await api.get("/api/chat/conversations", params=params, token=user.access)
    assert response.status == 200, response.body
    return response.data


def entry(page, chat_id):
    [found] = [item for item in page["items"] if item["id"] == chat_id]
    return found


@pytest.mark.gen_test(timeout=90)
async def test_group_pointers_receipts_and_unread_counts(api, user_factory, chat):
    owner, m1, m2, shy, outsider = [await user_factory(p) for p in ("o", "m1", "m2", "shy", "x")]
    hidden = await api.patch("/api/users/profile", json={"sendReadReceipts": False}, token=shy.access)
    assert hidden.status == 200 and hidden.data["sendReadReceipts"] is False, hidden.body
    group_id = await make_group(api, owner, [m1, m2, shy])
    co, c1, c1b, c2, cs, cx = await connect(chat, owner, m1, m1, m2, shy, outsider)
    sent = [await co.send(f"g{i}", groupId=group_id) for i in range(3)]
    for client in (co, c1, c1b, c2, cs):
        await client.expect("message", 3)
    assert entry(await inbox(api, m2), group_id)["unreadCount"] == 3

    ack = await c1.call("markConversationAsRead", {"groupId": group_id})
    assert ack["groupId"] == group_id and ack["conversationId"] is None
    assert ack["lastReadMessageId"] == sent[2]["id"] and ack["readAt"]
    event = {**ack, "readBy": m1.id}
    for client in (co, c1b, c2, cs):   # the group and m1's other socket; not the socket that asked
        assert await client.expect("messageRead") == [event]
    assert await c1.call("markConversationAsRead", {"groupId": group_id}) == ack   # a retry: no news
    await quiet(co, c1, c1b, c2, cs, cx)

    response = await api.post("/api/chat/read", json={"groupId": group_id, "messageId": sent[0]["id"]},
                              token=m2.access)
    assert response.status == 200, response.body
    assert response.data["lastReadMessageId"] == sent[0]["id"]
    for client in (co, c1, c1b, c2, cs):   # over REST no socket asked: all of them
        assert (await client.expect("messageRead"))[0]["readBy"] == m2.id
    # the pointer never moves back
    back = await c2.call("markConversationAsRead", {"groupId": group_id, "messageId": sent[0]["id"]})
    assert back == response.data
    await quiet(co, c1, c1b, c2, cs)
    # a reader who shares no receipts clears their own badge, and tells only their own sockets
    response = await api.post("/api/chat/read", json={"groupId": group_id}, token=shy.access)
    assert response.status == 200 and response.data["lastReadMessageId"] == sent[2]["id"]
    assert (await cs.expect("messageRead"))[0]["readBy"] == shy.id
    await quiet(co, c1, c1b, c2, cx)
    assert entry(await inbox(api, shy), group_id)["unreadCount"] == 0

    last = await receipts(api, owner, sent[2]["id"])
    assert [r["user"]["id"] for r in last["readBy"]] == [m1.id] and last["unreadCount"] == 1
    assert last["readBy"][0]["readAt"] == ack["readAt"] and "email" not in last["readBy"][0]["user"]
    first = await receipts(api, m2, sent[0]["id"])
    assert [r["user"]["id"] for r in first["readBy"]] == [m1.id, m2.id] and first["unreadCount"] == 0
    assert_error(await api.get(f"/api/chat/messages/{sent[0]['id']}/receipts", token=outsider.access), 404)

    # unread counts follow deletes: m2 had two unread, one of them is taken back
    assert entry(await inbox(api, m2), group_id)["unreadCount"] == 2
    await co.call("deleteMessage", {"messageId": sent[2]["id"]})
    mine = entry(await inbox(api, m2), group_id)
    assert mine["unreadCount"] == 1 and mine["lastMessage"]["deletedAt"] is not None
    assert mine["lastReadMessageId"] == sent[0]["id"]


@pytest.mark.gen_test(timeout=60)
async def test_former_members_and_outsiders_get_no_receipts(api, user_factory, chat):
    owner, kicked, leaver, outsider = [await user_factory(p) for p in ("o", "k", "l", "x")]
    group_id = await make_group(api, owner, [kicked, leaver])
    co, ck, cl, cx = await connect(chat, owner, kicked, leaver, outsider)
    sent = await co.send("before they go", groupId=group_id)
    for client in (co, ck, cl):
        await client.expect("message")
    assert (await api.delete(f"/api/groups/{group_id}/members/{kicked.id}", token=owner.access)).status == 200
    assert (await api.post(f"/api/groups/{group_id}/leave", token=leaver.access)).status == 200
    for user, client in ((kicked, ck), (leaver, cl), (outsider, cx)):
        assert_error(await api.post("/api/chat/read", json={"groupId": group_id}, token=user.access), 403)
        assert_error(await api.get(f"/api/chat/messages/{sent['id']}/receipts", token=user.access), 404)
        answer = await client.call("markConversationAsRead", {"groupId": group_id})
        assert answer["statusCode"] == 403
        await client.expect("exception")
        assert all(item["id"] != group_id for item in (await inbox(api, user))["items"])
    # members' reading is not told to those who left, and they are not counted
    await api.post("/api/chat/read", json={"groupId": group_id}, token=owner.access)
    await quiet(ck, cl, cx)
    assert await receipts(api, owner, sent["id"]) == {"readBy": [], "unreadCount": 0}


@pytest.mark.gen_test(timeout=60)
async def test_one_on_one_keeps_is_read_and_recent_messages(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca, cb, cb2 = await connect(chat, a, b, b)
    sent = [await ca.send(f"a{i}", recipientId=b.id) for i in range(3)]
    mine = await cb.send("b0", recipientId=a.id)
    for client in (cb, cb2):
        client.take()
    await ca.expect("message")
    conversation_id = sent[0]["conversationId"]
    recent = (await api.get("/api/chat/recent-messages", token=b.access)).data
    assert recent[0]["unreadCount"] == 3 and recent[0]["lastMessage"]["id"] == mine["id"]
    assert set(recent[0]) == {"id", "creator", "recipient", "lastMessage", "unreadCount", "createdAt", "updatedAt"}

    await ca.call("deleteMessage", {"messageId": sent[2]["id"]})
    for client in (ca, cb, cb2):
        await client.expect("messageDeleted")
    assert (await api.get("/api/chat/recent-messages", token=b.access)).data[0]["unreadCount"] == 2
    assert entry(await inbox(api, b), conversation_id)["unreadCount"] == 2

    # the older form of the event: {conversationId, recipientId}
    ack = await cb.call("markConversationAsRead", {"conversationId": conversation_id, "recipientId": a.id})
    assert ack["conversationId"] == conversation_id and ack["lastReadMessageId"] == sent[2]["id"]
    assert await ca.expect("messageRead") == [{**ack, "readBy": b.id}]
    assert await cb2.expect("messageRead") == [{**ack, "readBy": b.id}]
    await quiet(ca, cb)
    history = await ca.call("getMessages", {"recipientId": b.id})
    assert [(m["content"], m["isRead"], m["readAt"] is not None) for m in history] == [
        ("b0", False, False), ("", True, True), ("a1", True, True), ("a0", True, True)]
    read = await receipts(api, a, sent[1]["id"])
    assert [r["user"]["id"] for r in read["readBy"]] == [b.id] and read["unreadCount"] == 0
    assert await receipts(api, b, mine["id"]) == {"readBy": [], "unreadCount": 1}
    assert (await api.get("/api/chat/recent-messages", token=b.access)).data[0]["unreadCount"] == 0
    assert entry(await inbox(api, a), conversation_id)["unreadCount"] == 1

    for body, status in (({}, 400), ({"conversationId": conversation_id, "groupId": str(uuid.uuid4())}, 400),
                         ({"conversationId": conversation_id, "messageId": str(uuid.uuid4())}, 400),
                         ({"conversationId": str(uuid.uuid4())}, 404),
                         ({"conversationId": conversation_id, "recipientId": str(uuid.uuid4())}, 400)):
        assert_error(await api.post("/api/chat/read", json=body, token=b.access), status)


@pytest.mark.gen_test(timeout=60)
async def test_a_reader_without_receipts_leaves_is_read_unset(api, user_factory, chat):
    a, shy = await user_factory("a"), await user_factory("shy")
    hidden = await api.patch("/api/users/profile", json={"sendReadReceipts": False}, token=shy.access)
    assert hidden.status == 200, hidden.body
    ca, cs = await connect(chat, a, shy)
    sent = [await ca.send(f"a{i}", recipientId=shy.id) for i in range(2)]
    await cs.expect("message", 2)
    conversation_id = sent[0]["conversationId"]
    assert (await api.get("/api/chat/recent-messages", token=shy.access)).data[0]["unreadCount"] == 2

    ack = await cs.call("markConversationAsRead", {"conversationId": conversation_id})
    assert ack["lastReadMessageId"] == sent[1]["id"]
    await quiet(ca)
    # the sender learns nothing: not from receipts, nor from isRead/readAt anywhere
    history = (await api.get("/api/chat/messages", params={"recipientId": shy.id}, token=a.access)).data
    assert [(m["isRead"], m["readAt"]) for m in history] == [(False, None), (False, None)]
    recent = (await api.get("/api/chat/recent-messages", token=a.access)).data
    assert (recent[0]["lastMessage"]["isRead"], recent[0]["lastMessage"]["readAt"]) == (False, None)
    assert await receipts(api, a, sent[1]["id"]) == {"readBy": [], "unreadCount": 0}
    # while the reader's own unread counts clear, in both lists
    assert (await api.get("/api/chat/recent-messages", token=shy.access)).data[0]["unreadCount"] == 0
    assert entry(await inbox(api, shy), conversation_id)["unreadCount"] == 0

    # sharing again: the next read is told as before
    shown = await api.patch("/api/users/profile", json={"sendReadReceipts": True}, token=shy.access)
    assert shown.status == 200, shown.body
    later = await ca.send("a2", recipientId=shy.id)
    await cs.expect("message")
    assert (await api.get("/api/chat/recent-messages", token=shy.access)).data[0]["unreadCount"] == 1
    await cs.call("markConversationAsRead", {"conversationId": conversation_id})
    assert (await ca.expect("messageRead"))[0]["lastReadMessageId"] == later["id"]
    history = (await api.get("/api/chat/messages", params={"recipientId": shy.id}, token=a.access)).data
    assert [m["isRead"] for m in history] == [True, True, True]


@pytest.mark.gen_test(timeout=90)
async def test_inbox_mixes_conversations_and_groups_by_activity_with_a_cursor(api, user_factory, chat):
    me, p1, p2 = [await user_factory(p) for p in ("me", "p1", "p2")]
    quiet_group = await make_group(api, p1, [me], name="quiet")
    busy_group = await make_group(api, p2, [me], name="busy")
    cm, c1, c2 = await connect(chat, me, p1, p2)
    first = await c1.send("to me", recipientId=me.id)
    await c2.send("in busy", groupId=busy_group)
    last = await c2.send("to me too", recipientId=me.id)
    page = await inbox(api, me, limit=2)
    assert [(i["kind"], i["id"]) for i in page["items"]] == [("direct", last["conversationId"]), ("group", busy_group)]
    direct, group = page["items"]
    assert direct["partner"]["id"] == p2.id and direct["group"] is None and direct["unreadCount"] == 1
    assert direct["lastMessage"]["id"] == last["id"] and "email" not in direct["partner"]
    assert group["group"] == {"id": busy_group, "name": "busy", "iconUrl": None} and group["partner"] is None
    assert group["unreadCount"] == 1 and page["nextCursor"]
    rest = await inbox(api, me, limit=2, cursor=page["nextCursor"])
    assert [(i["kind"], i["id"]) for i in rest["items"]] == [("direct", first["conversationId"]),
                                                           ("group", quiet_group)]
    assert rest["items"][1]["lastMessage"] is None and rest["nextCursor"] is None
    for bad in ({"cursor": "nope"}, {"limit": 0}, {"limit": 101}, {"cursor": "1.x"}):
        assert_error(await api.get("/api/chat/conversations", params=bad, token=me.access), 400)
    assert_error(await api.get("/api/chat/conversations"), 401)


def _add_members(db_target, group_id: str, count: int) -> None:
    """Many members at once, straight into the database (registering 200 users by mail
    would only test registration)."""
    conn = pymysql.connect(host=db_target.host, port=db_target.port, user=db_target.user,
                           password=db_target.password, database=db_target.name, autocommit=True)
    try:
        with conn.cursor() as cur:
            rows = []
            for _ in range(count):
                uid = str(uuid.uuid4())
                rows.append((uid, f"bulk_{uid[:12]}", "Bulk", f"{uid}@example.test"))
            cur.executemany("INSERT INTO users (id, username, full_name, email, password_hash, created_at,"
                            " updated_at) VALUES (%s, %s, %s, %s, 'x', NOW(3), NOW(3))", rows)
            cur.executemany("INSERT INTO group_members (group_id, user_id, role, joined_at)"
                            " VALUES (%s, %s, 'member', NOW(3))", [(group_id, r[0]) for r in rows])
    finally:
        conn.close()


@pytest.mark.gen_test(timeout=90)
async def test_marking_a_big_group_read_is_one_pointer_write(api, user_factory, chat, runtime, db_target):
    owner, reader = await user_factory("o"), await user_factory("r")
    small = await make_group(api, owner, [reader])
    big = await make_group(api, owner, [reader])
    _add_members(db_target, big, 200)
    co, cr = await connect(chat, owner, reader)
    small_msg = await co.send("small", groupId=small)
    big_msg = await co.send("big", groupId=big)

    db = runtime.db
    originals = {name: getattr(db, name) for name in ("fetch_one", "fetch_all", "execute")}
    seen: list[tuple[str, str]] = []

    def counting(name, fn):
        async def call(sql, *args, **kwargs):
            seen.append((name, sql))
            return await fn(sql, *args, **kwargs)
        return call

    async def statements(method, path, **kw):
        seen.clear()
        for name, fn in originals.items():
            setattr(db, name, counting(name, fn))
        try:
            response = await api.request(method, path, token=reader.access, **kw)
        finally:
            for name, fn in originals.items():
                setattr(db, name, fn)
        assert response.status == 200, response.body
        return list(seen), response.data

    for group_id in (small, big):   # membership is cached after the first look
        await api.get("/api/chat/messages", params={"groupId": group_id}, token=reader.access)
    small_read, _ = await statements("POST", "/api/chat/read", json={"groupId": small})
    big_read, _ = await statements("POST", "/api/chat/read", json={"groupId": big})
    writes = [sql for name, sql in big_read if name == "execute"]
    assert len(writes) == 1 and "read_pointers" in writes[0]
    assert len(big_read) == len(small_read) <= 4, big_read

    small_receipts, _ = await statements("GET", f"/api/chat/messages/{small_msg['id']}/receipts")
    big_receipts, data = await statements("GET", f"/api/chat/messages/{big_msg['id']}/receipts")
    assert len(big_receipts) == len(small_receipts) == 2   # the message and its access, then the receipts
    assert data["unreadCount"] == 200 and [r["user"]["id"] for r in data["readBy"]] == [reader.id]
