"""Editing and deleting messages (issue 12) over REST and the /chat events: who may, what
everyone's sockets receive (each exactly once), what history shows afterwards."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from nexus_chat.services.message_changes import MAX_EDITS

from .chat_support import NO_PRESENCE, make_group, quiet
from .support import assert_error


async def connect(chat, *users):
    return [await chat(user, ["websocket"], ignore=NO_PRESENCE) for user in users]


def path(message_id: str, tail: str = "") -> str:
    return f"/api/chat/messages/{message_id}{tail}"


def everyone(message: dict) -> dict:
    """A Message as events carry it: `reactedByMe` is nobody's."""
    return {**message, "reactions": [{**r, "reactedByMe": False} for r in message["reactions"]]}


@pytest.mark.gen_test(timeout=60)
async def test_edit_reaches_every_socket_once_and_keeps_the_versions(api, user_factory, chat):
    a, b, outsider = await user_factory("a"), await user_factory("b"), await user_factory("x")
    a1, a2, b1, b2, cx = await connect(chat, a, a, b, b, outsider)
    sent = await a1.send("helo", recipientId=b.id)
    for client in (a2, b1, b2):
        await client.expect("message")
    assert sent["editedAt"] is None and sent["reactions"] == [] and sent["replyTo"] is None

    edited = await a1.call("editMessage", {"messageId": sent["id"], "content": "  hello  "})
    assert edited["id"] == sent["id"] and edited["content"] == "hello"
    assert edited["editedAt"] and edited["editedAt"] >= sent["createdAt"]
    assert edited["createdAt"] == sent["createdAt"] and edited["sender"] == sent["sender"]
    for client in (a1, a2, b1, b2):   # the editor's own sockets too: every one, once
        assert await client.expect("messageUpdated") == [everyone(edited)]

    # REST answers the same shape as the ack
    response = await api.patch(path(sent["id"]), json={"content": "hello, b"}, token=a.access)
    assert response.status == 200, response.body
    again = response.data
    assert set(again) == set(edited) and again["content"] == "hello, b"
    for client in (a1, a2, b1, b2):
        assert await client.expect("messageUpdated") == [everyone(again)]

    # a retry with the same content changes nothing and tells nobody
    assert await a2.call("editMessage", {"messageId": sent["id"], "content": "hello, b"}) == again
    await quiet(a1, a2, b1, b2, cx)

    versions = await api.get(path(sent["id"], "/edits"), token=b.access)
    assert versions.status == 200, versions.body
    assert [v["content"] for v in versions.data] == ["helo", "hello", "hello, b"]
    assert versions.data[0]["writtenAt"] == sent["createdAt"]
    assert versions.data[-1]["replacedAt"] is None and versions.data[0]["replacedAt"]

    history = await b1.call("getMessages", {"recipientId": a.id})
    assert history == [again]
    # the outsider cannot see or touch it: 404, as if it did not exist
    assert_error(await api.get(path(sent["id"], "/edits"), token=outsider.access), 404, "Message not found")
    assert_error(await api.patch(path(sent["id"]), json={"content": "mine"}, token=outsider.access), 404)
    answer = await cx.call("editMessage", {"messageId": sent["id"], "content": "mine"})
    assert answer["success"] is False and answer["statusCode"] == 404
    await cx.expect("exception")
    await quiet(a1, a2, b1, b2)


@pytest.mark.parametrize("setting_overrides", [{"chat_edit_window_s": 0}])
@pytest.mark.gen_test(timeout=60)
async def test_only_the_sender_edits_and_only_within_the_window(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca, cb = await connect(chat, a, b)
    sent = await ca.send("too late to fix", recipientId=b.id)
    await cb.expect("message")
    await asyncio.sleep(0.01)
    assert_error(await api.patch(path(sent["id"]), json={"content": "x"}, token=b.access), 403,
                 "You can only edit your own messages")
    assert_error(await api.patch(path(sent["id"]), json={"content": "x"}, token=a.access), 403,
                 "This message can no longer be edited")
    await quiet(ca, cb)
    history = await cb.call("getMessages", {"recipientId": a.id})
    assert history[0]["content"] == "too late to fix" and history[0]["editedAt"] is None


@pytest.mark.gen_test(timeout=60)
async def test_bad_input_is_a_400_envelope_and_an_error_ack(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca, cb = await connect(chat, a, b)
    sent = await ca.send("hi", recipientId=b.id)
    await cb.expect("message")
    ghost = str(uuid.uuid4())
    for body in ({}, {"content": "   "}, {"content": "x" * 5001}, {"content": 5}, {"content": "ok", "x": 1}):
        body_error = assert_error(await api.patch(path(sent["id"]), json=body, token=a.access), 400)
        assert body_error["errors"], body
    assert_error(await api.patch(path("not-a-uuid"), json={"content": "x"}, token=a.access), 400)
    assert_error(await api.delete(path("not-a-uuid"), token=a.access), 400)
    assert_error(await api.patch(path(ghost), json={"content": "x"}, token=a.access), 404)
    assert_error(await api.delete(path(ghost), token=a.access), 404)
    assert_error(await api.patch(path(sent["id"]), json={"content": "x"}), 401)
    cases = [
        ("editMessage", {"messageId": sent["id"]}, 400),
        ("editMessage", {"messageId": sent["id"], "content": ""}, 400),
        ("editMessage", {"messageId": "nope", "content": "x"}, 400),
        ("editMessage", "not an object", 400),
        ("editMessage", {"messageId": ghost, "content": "x"}, 404),
        ("deleteMessage", {}, 400),
        ("deleteMessage", {"messageId": ghost}, 404),
        ("editMessage", {"messageId": sent["id"], "content": "b cannot"}, 403),
        ("deleteMessage", {"messageId": sent["id"]}, 403),
    ]
    for event, payload, status in cases:
        answer = await cb.call(event, payload)
        assert answer["success"] is False and answer["statusCode"] == status, (event, payload, answer)
        [notice] = await cb.expect("exception")
        assert notice["event"] == event and notice["statusCode"] == status
    await quiet(ca, cb)


@pytest.mark.gen_test(timeout=60)
async def test_delete_leaves_a_tombstone_for_everyone_in_the_group(api, user_factory, chat):
    owner, admin, m1, m2, kicked = [await user_factory(p) for p in ("o", "ad", "m1", "m2", "k")]
    group_id = await make_group(api, owner, [admin, m1, m2, kicked])
    promoted = await api.put(f"/api/groups/{group_id}/members/{admin.id}/role", json={"role": "admin"},
                             token=owner.access)
    assert promoted.status == 200, promoted.body
    co, ca, c1, c1b, c2, ck = await connect(chat, owner, admin, m1, m1, m2, kicked)
    first = await c1.send("from m1", groupId=group_id)
    second = await c2.send("from m2", groupId=group_id)
    for client in (co, ca, c1, c1b, c2, ck):
        await client.expect("message", 2)
    kick = await api.delete(f"/api/groups/{group_id}/members/{kicked.id}", token=owner.access)
    assert kick.status == 200, kick.body

    # a member deletes only their own; the kicked member is no longer let in at all
    assert_error(await api.delete(path(first["id"]), token=m2.access), 403, "You can only delete your own messages")
    assert_error(await api.delete(path(first["id"]), token=kicked.access), 404)
    assert_error(await api.patch(path(first["id"]), json={"content": "x"}, token=kicked.access), 404)
    answer = await ck.call("deleteMessage", {"messageId": first["id"]})
    assert answer["statusCode"] == 404
    await ck.expect("exception")

    tombstone = await c1.call("deleteMessage", {"messageId": first["id"]})
    assert tombstone["id"] == first["id"] and tombstone["content"] == ""
    assert tombstone["deletedAt"] and tombstone["deletedBy"] == m1.id
    event = {"messageId": first["id"], "conversationId": None, "groupId": group_id,
             "deletedAt": tombstone["deletedAt"], "deletedBy": m1.id}
    for client in (co, ca, c1, c1b, c2):
        assert await client.expect("messageDeleted") == [event]
    # again: nothing changes, nobody is told
    assert (await api.delete(path(first["id"]), token=m1.access)).data == tombstone
    # the group's admin deletes a member's message
    response = await api.delete(path(second["id"]), token=admin.access)
    assert response.status == 200, response.body
    assert response.data["deletedBy"] == admin.id
    for client in (co, ca, c1, c1b, c2):
        [deleted] = await client.expect("messageDeleted")
        assert deleted["messageId"] == second["id"] and deleted["deletedBy"] == admin.id
    await quiet(co, ca, c1, c1b, c2, ck)

    history = await c2.call("getMessages", {"groupId": group_id})
    assert [(m["id"], m["content"], m["deletedBy"]) for m in history] == [
        (second["id"], "", admin.id), (first["id"], "", m1.id)]
    assert_error(await api.patch(path(first["id"]), json={"content": "undo"}, token=m1.access), 409)
    versions = await api.get(path(first["id"], "/edits"), token=owner.access)
    assert versions.status == 200 and versions.data == []
    # paging still counts the tombstones: `before` a deleted message works
    older = await c2.call("getMessages", {"groupId": group_id, "before": second["id"]})
    assert [m["id"] for m in older] == [first["id"]]


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_edits_are_both_kept_and_the_last_one_wins(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca, cb = await connect(chat, a, b)
    sent = await ca.send("v0", recipientId=b.id)
    await cb.expect("message")
    responses = await asyncio.gather(*[api.patch(path(sent["id"]), json={"content": f"v{i}"}, token=a.access)
                                       for i in (1, 2)])
    assert [r.status for r in responses] == [200, 200]
    versions = (await api.get(path(sent["id"], "/edits"), token=b.access)).data
    contents = [v["content"] for v in versions]
    assert contents[0] == "v0" and sorted(contents[1:]) == ["v1", "v2"]
    history = await cb.call("getMessages", {"recipientId": a.id})
    assert history[0]["content"] == contents[-1]
    # each edit was told once, in commit order: the last event carries the final content
    updates = await cb.wait_for("messageUpdated", 2)
    assert [u["content"] for u in updates] == contents[1:]


@pytest.mark.gen_test(timeout=120)
async def test_the_versions_a_message_keeps_are_bounded(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca, cb = await connect(chat, a, b)
    sent = await ca.send("v0", recipientId=b.id)
    for i in range(1, MAX_EDITS + 1):
        answer = await ca.call("editMessage", {"messageId": sent["id"], "content": f"v{i}"})
        assert answer["content"] == f"v{i}", answer
    refused = await api.patch(path(sent["id"]), json={"content": "one too many"}, token=a.access)
    assert_error(refused, 400, f"A message can be edited at most {MAX_EDITS} times")
    versions = (await api.get(path(sent["id"], "/edits"), token=b.access)).data
    assert [v["content"] for v in versions] == [f"v{i}" for i in range(MAX_EDITS + 1)]
