"""Connection-state recovery with the official JS client (docs/realtime.md#connection-state-recovery),
and the REST catch-up for every other client: a dropped connection misses nothing."""
from __future__ import annotations

import asyncio
import io
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from nexus_chat.offsets import Position
from nexus_chat.services import attachments as attachment_service

from .chat_support import make_group, quiet
from .recovery_support import RECOVERY, newest, drop, hold, resume
from .support import assert_error


@pytest.mark.parametrize("setting_overrides", [RECOVERY])
@pytest.mark.gen_test(timeout=120)
async def test_a_dropped_client_recovers_every_missed_event_once_in_order(api, user_factory, chat, recovering):
    a, b, owner = await user_factory("a"), await user_factory("b"), await user_factory("own")
    group_id = await make_group(api, owner, [a, b])
    js = await recovering(a)
    first = await js.until(lambda i: i["type"] == "connect")
    assert first["recovered"] is False
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))

    # No event before the drop (the client then has no offset): it still recovers.
    await drop(js)
    mark = len(js.seen)
    direct = [await cb.send(f"direct {i}", recipientId=a.id) for i in range(3)]
    grouped = [await cb.send(f"group {i}", groupId=group_id) for i in range(3)]
    again = await js.until(lambda i: i["type"] == "connect", timeout=15)
    assert again["recovered"] is True and again["id"] == first["id"]
    await js.until(lambda i: i["type"] == "event" and i["event"] == "message"
                   and i["args"][0]["id"] == grouped[-1]["id"])
    got = js.messages(mark)
    assert [args[0]["id"] for args in got] == [m["id"] for m in direct + grouped]   # once, in order
    offsets = [newest(args[1]) for args in got]
    assert all(isinstance(args[1], str) for args in got) and offsets == sorted(set(offsets))

    # Still in the group room without joining again; live events carry offsets too.
    live = await cb.send("after recovery", groupId=group_id)
    item = await js.until(lambda i: i["type"] == "event" and i["event"] == "message")
    assert item["args"][0]["id"] == live["id"] and newest(item["args"][1]) > offsets[-1]

    # Removed from the group while away: nothing of the group after the removal.
    await drop(js)
    mark = len(js.seen)
    kicked = await api.delete(f"/api/groups/{group_id}/members/{a.id}", token=owner.access)
    assert kicked.status == 200, kicked.body
    await cb.send("group, after the kick", groupId=group_id)
    last = await cb.send("direct, after the kick", recipientId=a.id)
    again = await js.until(lambda i: i["type"] == "connect", timeout=15)
    assert again["recovered"] is True
    await js.until(lambda i: i["type"] == "event" and i["event"] == "message" and i["args"][0]["id"] == last["id"])
    await asyncio.sleep(0.3)
    assert [args[0]["content"] for args in js.messages(mark)] == ["direct, after the kick"]
    await cb.send("group, still kicked", groupId=group_id)
    await asyncio.sleep(0.3)
    assert [args[0]["content"] for args in js.messages(mark)] == ["direct, after the kick"]


@pytest.mark.parametrize("setting_overrides", [{**RECOVERY, "realtime_recovery_window_s": 1}])
@pytest.mark.gen_test(timeout=120)
async def test_past_the_window_a_new_session_and_rest_returns_the_gap_once(api, user_factory, chat, recovering):
    a, b = await user_factory("a"), await user_factory("b")
    js = await recovering(a, delay_ms=2500)          # reconnects after the 1 s window
    first = await js.until(lambda i: i["type"] == "connect")
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))
    before = await cb.send("before the drop", recipientId=a.id)
    item = await js.until(lambda i: i["type"] == "event" and i["event"] == "message")
    seen_offset = item["args"][1]
    await drop(js)
    missed = [await cb.send(f"missed {i}", recipientId=a.id) for i in range(4)]
    again = await js.until(lambda i: i["type"] == "connect", timeout=20)
    assert again["recovered"] is False and again["id"] != first["id"]

    # The REST catch-up from the last offset the socket delivered: each missed event once.
    page = (await api.get("/api/chat/events", params={"after": seen_offset, "limit": 3}, token=a.access)).data
    assert page["hasMore"] is True and len(page["events"]) == 3
    rest = (await api.get("/api/chat/events", params={"after": page["nextAfter"]}, token=a.access)).data
    assert rest["hasMore"] is False
    got = [e for e in page["events"] + rest["events"] if e["event"] == "message"]
    assert [e["data"]["id"] for e in got] == [m["id"] for m in missed]
    assert before["id"] not in [e["data"]["id"] for e in got]
    assert (await api.get("/api/chat/events", params={"after": rest["nextAfter"]}, token=a.access)).data == \
        {"events": [], "hasMore": False, "nextAfter": rest["nextAfter"]}


@pytest.mark.parametrize("setting_overrides", [RECOVERY])
@pytest.mark.gen_test(timeout=120)
async def test_another_user_with_my_pid_neither_recovers_nor_spoils_my_session(api, user_factory, chat,
                                                                              recovering):
    a, b = await user_factory("a"), await user_factory("b")
    js = await recovering(a, delay_ms=2000)          # away long enough for b to try first
    first = await js.until(lambda i: i["type"] == "connect")
    assert first["pid"]
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))
    await drop(js)
    missed = await cb.send("while a was away", recipientId=a.id)
    thief = await chat(b, ["websocket"], auth={"token": b.access, "pid": first["pid"], "offset": "0"})
    await quiet(thief)
    assert [m for m in thief.of("message")] == []          # nothing of a's replayed to b
    again = await js.until(lambda i: i["type"] == "connect", timeout=15)
    assert again["recovered"] is True and again["id"] == first["id"]
    item = await js.until(lambda i: i["type"] == "event" and i["event"] == "message")
    assert item["args"][0]["id"] == missed["id"]


@pytest.mark.gen_test(timeout=60)
async def test_rest_catch_up_for_a_client_without_recovery(api, user_factory, chat):
    """Recovery off (the default): python-socketio gets plain events, and follows the log
    over REST after a reconnect."""
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    group_id = await make_group(api, b, [a])
    start = (await api.get("/api/chat/events", token=a.access)).data
    assert start["events"] == [] and Position.parse(start["nextAfter"]) is not None
    ca = await chat(a, ["websocket"], ignore=("userStatusChanged",))
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))
    sent = await cb.send("plain", recipientId=a.id)
    [message] = await ca.wait_for("message")
    assert message == sent                                     # no offset argument without recovery
    await ca.close()
    group_message = await cb.send("while a was away", groupId=group_id)
    await cb.send("not for a", recipientId=c.id)
    page = (await api.get("/api/chat/events", params={"after": start["nextAfter"]}, token=a.access)).data
    assert [(e["event"], e["data"]["id"]) for e in page["events"] if e["event"] == "message"] == [
        ("message", sent["id"]), ("message", group_message["id"])]
    # An offset of digits (the previous version's) is still followed, as it was then.
    legacy = (await api.get("/api/chat/events", params={"after": "0", "limit": 500}, token=a.access)).data
    assert {group_message["id"], sent["id"]} <= {e["data"]["id"] for e in legacy["events"]}
    assert legacy["nextAfter"].isdigit() and all(e["offset"].isdigit() for e in legacy["events"])
    for bad in ({"after": "x"}, {"after": -1}, {"limit": 0}, {"limit": 501}, {"after": "v"}, {"after": "\u00b2"},
                {"after": "v1-0.1"}, {"after": "9" * 20}, {"after": "v" + "-1.1" * 700}):
        assert_error(await api.get("/api/chat/events", params=bad, token=a.access), 400)
    assert_error(await api.get("/api/chat/events"), 401)


@pytest.mark.parametrize("setting_overrides", [RECOVERY])
@pytest.mark.gen_test(timeout=120)
async def test_concurrent_senders_while_the_client_drops_and_recovers(api, user_factory, chat, recovering):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    js = await recovering(a, delay_ms=200)
    await js.until(lambda i: i["type"] == "connect")
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))
    cc = await chat(c, ["polling"], ignore=("userStatusChanged",))

    async def send_all(client, name):
        sent = []
        for i in range(40):
            sent.append(await client.send(f"{name} {i}", recipientId=a.id))
        return sent

    senders = asyncio.gather(send_all(cb, "b"), send_all(cc, "c"))
    for _ in range(2):
        await asyncio.sleep(0.3)
        await drop(js)
        reconnected = await js.until(lambda i: i["type"] == "connect", timeout=15)
        assert reconnected["recovered"] is True
    from_b, from_c = await senders
    wanted = {m["id"] for m in from_b + from_c}
    await js.wait(lambda: wanted <= {args[0]["id"] for args in js.messages()}, timeout=20)
    await asyncio.sleep(0.3)
    got = [args[0] for args in js.messages()]
    assert len(got) == len(wanted)                                         # nothing twice
    assert [m["id"] for m in got if m["senderId"] == b.id] == [m["id"] for m in from_b]   # in order
    assert [m["id"] for m in got if m["senderId"] == c.id] == [m["id"] for m in from_c]


@pytest.mark.parametrize("setting_overrides", [RECOVERY])
@pytest.mark.gen_test(timeout=120)
async def test_a_server_restart_during_the_outage_loses_nothing(api, user_factory, runtime, settings,
                                                                 db_target, recovering):
    from nexus_chat.runtime import Runtime
    from .chat_support import ChatClient

    a, b = await user_factory("a"), await user_factory("b")
    js = await recovering(a, delay_ms=500)
    first = await js.until(lambda i: i["type"] == "connect")
    await runtime.stop(grace_s=1)                       # the session is kept in the database
    await js.until(lambda i: i["type"] == "disconnect")
    restarted = await Runtime.start(settings, db_target)
    restarted.listen(runtime.port, "127.0.0.1")
    cb = ChatClient(runtime.base_url, b, ["websocket"], ignore=("userStatusChanged",))
    try:
        await cb.connect()
        missed = [await cb.send(f"after restart {i}", recipientId=a.id) for i in range(3)]
        again = await js.until(lambda i: i["type"] == "connect", timeout=20)
        assert again["recovered"] is True and again["id"] == first["id"]
        await js.wait(lambda: {m["id"] for m in missed} <= {args[0]["id"] for args in js.messages()})
        await asyncio.sleep(0.3)
        assert [args[0]["id"] for args in js.messages()] == [m["id"] for m in missed]
    finally:
        await cb.close()
        await restarted.stop(grace_s=1)


@pytest.mark.parametrize("setting_overrides", [RECOVERY])
@pytest.mark.gen_test(timeout=120)
async def test_events_missed_before_and_after_a_restart_are_replayed_once(api, user_factory, runtime, settings,
                                                                          db_target, recovering, chat):
    from nexus_chat.runtime import Runtime
    from .chat_support import ChatClient

    a, b = await user_factory("a"), await user_factory("b")
    js = await recovering(a)
    first = await js.until(lambda i: i["type"] == "connect")
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))
    seen = await cb.send("seen", recipientId=a.id)
    await js.until(lambda i: i["type"] == "event" and i["event"] == "message" and i["args"][0]["id"] == seen["id"])
    await hold(js, db_target)
    mark = len(js.seen)
    missed = [await cb.send(f"before the restart {i}", recipientId=a.id) for i in range(2)]
    await cb.close()
    await runtime.stop(grace_s=1)
    restarted = await Runtime.start(settings, db_target)
    restarted.listen(runtime.port, "127.0.0.1")
    cb = ChatClient(runtime.base_url, b, ["websocket"], ignore=("userStatusChanged",))
    try:
        await cb.connect()
        missed += [await cb.send(f"after the restart {i}", recipientId=a.id) for i in range(2)]
        again = await resume(js)
        assert again["type"] == "connect" and again["recovered"] is True and again["id"] == first["id"]
        marker = await cb.send("live", recipientId=a.id)
        await js.until(lambda i: i["type"] == "event" and i["event"] == "message"
                       and i["args"][0]["id"] == marker["id"])
        assert [args[0]["id"] for args in js.messages(mark)] == [m["id"] for m in missed + [marker]]
    finally:
        await cb.close()
        await restarted.stop(grace_s=1)


@pytest.mark.parametrize("setting_overrides", [RECOVERY])
@pytest.mark.gen_test(timeout=120)
async def test_every_stored_event_kind_is_replayed_with_its_offset(api, user_factory, chat, recovering,
                                                                   db_target):
    a, b = await user_factory("a"), await user_factory("b")
    js = await recovering(a)
    first = await js.until(lambda i: i["type"] == "connect")
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))
    mine = await js.send("from a", recipientId=b.id)
    await cb.wait_for("message")
    await hold(js, db_target)
    mark = len(js.seen)
    await cb.call("markConversationAsRead", {"conversationId": mine["conversationId"]})
    await cb.call("reactToMessage", {"messageId": mine["id"], "emoji": "\U0001F44D", "react": True})
    theirs = await cb.send("from b", recipientId=a.id)
    await cb.call("editMessage", {"messageId": theirs["id"], "content": "from b, edited"})
    await cb.call("deleteMessage", {"messageId": theirs["id"]})
    again = await resume(js)
    assert again["recovered"] is True and again["id"] == first["id"]
    marker = await cb.send("live", recipientId=a.id)
    await js.until(lambda i: i["type"] == "event" and i["event"] == "message"
                   and i["args"][0]["id"] == marker["id"])
    got = [i for i in js.seen[mark:] if i["type"] == "event"]
    assert [i["event"] for i in got] == ["messageRead", "messageReaction", "message", "messageUpdated",
                                         "messageDeleted", "message"]
    offsets = [i["args"][-1] for i in got]
    assert all(isinstance(o, str) and Position.parse(o) for o in offsets) and len(got[0]["args"]) == 2
    assert [newest(o) for o in offsets] == sorted({newest(o) for o in offsets})


@pytest.mark.gen_test(timeout=60)
async def test_history_has_a_forward_cursor(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca = await chat(a, ["websocket"], ignore=("userStatusChanged",))
    sent = [await ca.send(f"m{i}", recipientId=b.id) for i in range(6)]

    async def page(**params):
        response = await api.get("/api/chat/messages", params={"recipientId": a.id, **params}, token=b.access)
        assert response.status == 200, response.body
        return [m["id"] for m in response.data]
    assert await page(after=sent[1]["id"]) == [m["id"] for m in sent[2:]]          # oldest first
    assert await page(after=sent[1]["id"], limit=2) == [sent[2]["id"], sent[3]["id"]]
    assert await page(after=sent[5]["id"]) == []
    for bad in ({"after": sent[0]["id"], "before": sent[3]["id"]}, {"after": "x"},
                {"after": "8a7d1c8e-3c49-4d4e-9a11-3f6f7e0c1d2b"}):
        response = await api.get("/api/chat/messages", params={"recipientId": a.id, **bad}, token=b.access)
        assert_error(response, 400)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (10, 120, 30)).save(out, "PNG")
    return out.getvalue()


async def age_stored_urls(runtime, message_id: str, planted: dict) -> None:
    """Makes the stored `message` event look an hour old: its attachments' signed URLs
    expired (signed by the server, an hour ago). ``planted`` is added to its attachments as
    a payload could name an attachment: an id with a URL the server never signed."""
    ctx = runtime.ctx
    row = await ctx.db.fetch_one(
        "SELECT `offset`, payload FROM event_log WHERE event = 'message' AND payload LIKE %s",
        (f'%"{message_id}"%',))
    payload = json.loads(row["payload"])
    past = int(time.time()) - 60
    for item in payload["attachments"]:
        item["url"] = attachment_service.signed_url(ctx, item["id"], "file", past)
        if "thumbnailUrl" in item:
            item["thumbnailUrl"] = attachment_service.signed_url(ctx, item["id"], "thumbnail", past)
    payload["attachments"].append(planted)
    await ctx.db.execute("UPDATE event_log SET payload = %s WHERE `offset` = %s",
                         (json.dumps(payload), row["offset"]))


async def check_fresh(api, attachments: list[dict], photo_id: str, planted_url: str) -> None:
    photo, planted = attachments
    assert photo["id"] == photo_id
    for url in (photo["url"], photo["thumbnailUrl"]):
        assert int(parse_qs(urlsplit(url).query)["expires"][0]) > time.time() + 60
        assert (await api.get(url)).status == 200             # no token: the signed URL works
    assert planted["url"] == planted_url                      # never signed by the server: left as is
    assert_error(await api.get(planted["url"]), 403)


@pytest.mark.parametrize("setting_overrides", [RECOVERY])
@pytest.mark.gen_test(timeout=120)
async def test_replayed_and_caught_up_events_carry_fresh_attachment_urls(
        api, user_factory, chat, recovering, runtime):
    """A stored event keeps the signed URLs it was published with; replayed on recovery or
    served by GET /api/chat/events later, its attachments get URLs that work now. Only URLs
    the server signed are renewed: an id a payload merely names gets no readable link."""
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    ca = await chat(a, ["websocket"], ignore=("userStatusChanged",))
    start = (await api.get("/api/chat/events", token=b.access)).data["nextAfter"]
    js = await recovering(b)
    await js.until(lambda i: i["type"] == "connect")
    await drop(js)
    mark = len(js.seen)

    photo = (await api.post("/api/chat/attachments", token=a.access, files={
        "file": ("photo.png", png(), "image/png")})).data
    secret = (await api.post("/api/chat/attachments", token=c.access, files={
        "file": ("c.pdf", b"%PDF-1.4\nc's", "application/pdf")})).data
    planted_url = f"/api/chat/attachments/{secret['id']}?expires=1&sig={'0' * 64}"
    planted = {"id": secret["id"], "kind": "file", "url": planted_url}
    sent = await ca.call("sendMessage", {"recipientId": b.id, "attachmentIds": [photo["id"]]})
    await age_stored_urls(runtime, sent["id"], planted)

    again = await js.until(lambda i: i["type"] == "connect", timeout=15)
    assert again["recovered"] is True
    await js.until(lambda i: i["type"] == "event" and i["event"] == "message")
    [[replayed, _offset]] = js.messages(mark)
    assert replayed["id"] == sent["id"]
    await check_fresh(api, replayed["attachments"], photo["id"], planted_url)

    page = (await api.get("/api/chat/events", params={"after": start}, token=b.access)).data
    [caught_up] = [e["data"] for e in page["events"] if e["event"] == "message"]
    await check_fresh(api, caught_up["attachments"], photo["id"], planted_url)
