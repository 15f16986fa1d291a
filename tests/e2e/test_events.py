"""The events port (nexus_chat/events.py): the pipeline from publish to delivery, and an
event type the socket layer has never heard of reaching exactly its audience."""
from __future__ import annotations

import logging

import pytest

from nexus_chat.events import Audience, Emit, Events, GroupDeleted, MembershipChange, UserDeleted, with_offset

from .chat_support import NO_PRESENCE, make_group, quiet


def recording(events: Events) -> list:
    seen: list = []
    events.subscribe(seen.append)
    return seen


@pytest.mark.gen_test
async def test_records_reach_listeners_in_publish_order():
    events = Events()
    seen = recording(events)
    audience = Audience.to_conversation("a", "b", except_socket="sid1")
    await events.publish("message", {"n": 1}, audience)
    await events.join_group("g", ["a", "b"])
    await events.leave_group("g", ["b"])
    await events.publish("typing", {"n": 2}, Audience.to_group("g", except_users=["a"]), volatile=True)
    await events.group_deleted("g")
    await events.user_deleted("a")
    assert seen == [
        Emit("message", {"n": 1}, Audience(users=frozenset({"a", "b"}), except_socket="sid1")),
        MembershipChange("g", ("a", "b"), True),
        MembershipChange("g", ("b",), False),
        Emit("typing", {"n": 2}, Audience(groups=frozenset({"g"}), except_users=frozenset({"a"})), volatile=True),
        GroupDeleted("g"),
        UserDeleted("a"),
    ]


@pytest.mark.gen_test
async def test_stages_sit_between_publish_and_delivery():
    events = Events()
    seen = recording(events)
    logged: list = []

    async def event_log(record):   # what a replay log does: number the events worth keeping
        if isinstance(record, Emit) and not record.volatile:
            logged.append(record)
            return with_offset(record, str(len(logged)))
        return record

    async def swallow_typing(record):
        return None if isinstance(record, Emit) and record.event == "typing" else record

    events.add_stage(event_log)
    events.add_stage(swallow_typing)
    await events.publish("message", {}, Audience.to_user("a"))
    await events.publish("typing", {}, Audience.to_user("a"), volatile=True)
    await events.publish("userStatusChanged", {}, Audience.to_user("a"), volatile=True)
    assert [(r.event, r.offset) for r in seen] == [("message", "1"), ("userStatusChanged", None)]
    assert [r.event for r in logged] == ["message"]


@pytest.mark.gen_test
async def test_after_commit_publishes_only_when_the_block_completes():
    events = Events()
    seen = recording(events)
    async with events.after_commit() as outbox:
        outbox.publish("one", {}, Audience.to_user("a"))
        outbox.join_group("g", ["a"])
        assert seen == []        # nothing before the block ends
    assert seen == [Emit("one", {}, Audience.to_user("a")), MembershipChange("g", ("a",), True)]
    with pytest.raises(RuntimeError):
        async with events.after_commit() as outbox:
            outbox.publish("two", {}, Audience.to_user("a"))
            raise RuntimeError("rolled back")
    assert len(seen) == 2


@pytest.mark.gen_test
async def test_a_failing_listener_neither_raises_nor_stops_the_others(caplog):
    events = Events()

    def broken(record):
        raise ValueError("boom")

    events.subscribe(broken)
    seen = recording(events)
    with caplog.at_level(logging.ERROR, logger="nexus_chat.events"):
        await events.publish("message", {}, Audience.to_user("a"))
    assert len(seen) == 1
    assert "event listener" in caplog.text
    caplog.clear()   # the failure was on purpose


@pytest.mark.gen_test(timeout=60)
async def test_a_new_event_type_needs_nothing_in_the_socket_layer(api, user_factory, chat, runtime):
    """What a service publishes reaches exactly the audience it named."""
    a, b, c = [await user_factory(p) for p in ("a", "b", "c")]
    ca, cb, cc = [await chat(u, ["websocket"], ignore=NO_PRESENCE) for u in (a, b, c)]
    cb2 = await chat(b, ["websocket"], ignore=NO_PRESENCE)
    group_id = await make_group(api, a, [b])
    events = runtime.ctx.events

    await events.publish("storyPosted", {"id": 1}, Audience.to_user(b.id))
    assert await cb.expect("storyPosted") == [{"id": 1}]
    assert await cb2.expect("storyPosted") == [{"id": 1}]
    await quiet(ca, cc)

    await events.publish("groupRenamed", {"id": 2}, Audience.to_group(group_id, except_users=[a.id]))
    assert await cb.expect("groupRenamed") == [{"id": 2}]
    assert await cb2.expect("groupRenamed") == [{"id": 2}]
    await quiet(ca, cc)

    await events.publish("pair", {"id": 3}, Audience.to_conversation(a.id, b.id, except_socket=cb2.sio.get_sid("/chat")))
    assert await ca.expect("pair") == [{"id": 3}]
    assert await cb.expect("pair") == [{"id": 3}]
    await quiet(cb2, cc)
