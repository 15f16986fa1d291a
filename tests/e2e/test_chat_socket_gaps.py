"""Two contract gaps of the /chat namespace: a typing notice to nobody, and a
clientMessageId reused for a different conversation."""
from __future__ import annotations

import uuid

import pytest

from .chat_support import NO_PRESENCE, make_group, quiet


@pytest.mark.gen_test(timeout=60)
async def test_typing_to_a_user_that_does_not_exist_is_404(user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca = await chat(a, ["websocket"], ignore=NO_PRESENCE)
    cb = await chat(b, ["websocket"], ignore=NO_PRESENCE)
    ack = await ca.call("typing", {"recipientId": str(uuid.uuid4()), "isTyping": True})
    assert ack["success"] is False and ack["statusCode"] == 404 and ack["error"] == "Not Found", ack
    assert ack["message"] == "Recipient not found"
    assert (await ca.expect("exception"))[0]["statusCode"] == 404
    # a real user still gets the notice, and the ack is empty as before
    assert await ca.call("typing", {"recipientId": b.id, "isTyping": True}) is None
    assert await cb.expect("typing") == [{"userId": a.id, "recipientId": b.id, "isTyping": True}]


@pytest.mark.gen_test(timeout=60)
async def test_a_client_message_id_reused_for_another_target_is_409(api, user_factory, chat):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    group_id = await make_group(api, a, [b])
    ca, cb, cc = [await chat(u, ["websocket"], ignore=NO_PRESENCE) for u in (a, b, c)]
    first = await ca.call("sendMessage", {"recipientId": b.id, "content": "to b", "clientMessageId": "k-1"})
    assert await cb.expect("message") == [first]

    for other_target in ({"recipientId": c.id}, {"groupId": group_id}):
        ack = await ca.call("sendMessage", {**other_target, "content": "elsewhere", "clientMessageId": "k-1"})
        assert ack["success"] is False and ack["statusCode"] == 409 and ack["error"] == "Conflict", ack
        assert ack["message"] == "clientMessageId was already used for a message to another recipient or group"
    # the same target is still an idempotent resend
    assert await ca.call("sendMessage", {"recipientId": b.id, "content": "to b", "clientMessageId": "k-1"}) == first
    await quiet(cb, cc)
    assert await cc.call("getMessages", {"recipientId": a.id}) == []
