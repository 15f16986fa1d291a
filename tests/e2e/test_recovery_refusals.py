"""What connection-state recovery refuses, or never offers: forged offsets and pids, a
voluntary disconnect, a session revoked during the outage, events the log no longer keeps,
and a server with recovery off. A bare WebSocket client sends exactly the CONNECT auth each
case needs, and reads what the server answers."""
from __future__ import annotations

import datetime as dt

import pytest

from nexus_chat.event_log import sweep

from nexus_chat.offsets import Position

from .recovery_support import RECOVERY, RawChat, connection, kept, newest
from .support import assert_error


async def away(raw: RawChat, db_target) -> str:
    """The connection breaks; returns its pid once the server kept the session."""
    raw.close()
    await kept(db_target, raw.answer["pid"])
    return raw.answer["pid"]


async def back(runtime, cb, user, to_user, **auth) -> RawChat:
    """Reconnects with ``auth``; then a live marker from ``cb``, read up to: everything the
    server replayed arrived before it."""
    raw = await RawChat.connect(runtime.port, {"token": user.access, **auth})
    if raw.refused is None:
        marker = await cb.send("marker", recipientId=to_user.id)
        await raw.until_message(marker["id"])
        raw.events = [(e, args) for e, args in raw.events if not (e == "message" and args[0]["id"] == marker["id"])]
    return raw


def newest_offset(message: dict, raw: RawChat) -> int:
    """The offset of ``message`` as the socket delivered it (the newest its position names)."""
    return newest(next(args[-1] for e, args in raw.events if e == "message" and args[0]["id"] == message["id"]))


@pytest.mark.parametrize("setting_overrides", [RECOVERY])
@pytest.mark.gen_test(timeout=120)
async def test_forged_offsets_and_pids_replay_nothing_that_is_not_the_sessions(api, user_factory, chat,
                                                                               runtime, db_target):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))
    before_session = await cb.send("before a's session", recipientId=a.id)
    raw = await RawChat.connect(runtime.port, {"token": a.access})
    sid, pid = raw.answer["sid"], raw.answer["pid"]
    first = await cb.send("first", recipientId=a.id)
    await raw.until_message(first["id"])
    await away(raw, db_target)
    await cb.send("for c", recipientId=c.id)
    missed = await cb.send("missed", recipientId=a.id)

    # An offset from before the session started (a position from long ago, or an offset of
    # the previous version, digits): the replay starts where the session did.
    writer = runtime.event_log.writer                        # this run's
    assert writer in Position.parse(raw.events[-1][1][-1]).writers
    for offset in ("v0", f"v0-{writer}.0", "0"):
        if offset != "v0":
            await away(raw, db_target)
        raw = await back(runtime, cb, a, a, pid=pid, offset=offset)
        assert raw.answer == {"sid": sid, "pid": pid}
        assert raw.message_ids()[:2] == [first["id"], missed["id"]], offset
        assert before_session["id"] not in raw.message_ids()
        assert all(Position.parse(args[-1]) for _e, args in raw.events)

    # Offsets that are no offset count as none (from where the session started).
    for offset in ("abc", "-1", "1e3", 5, None, {"x": 1}, ["7"], "9" * 21, "", " 12", "v", "v1-0.5",
                   "v1-0.3", "v" + "9" * 11, f"v1-{writer}.", f"v1-{writer}.9.9",
                   "v1" + "".join(f"-{w}.1" for w in range(1, 66)), "v1" + "-1.1" * 600, "v1\n"):
        await away(raw, db_target)
        raw = await back(runtime, cb, a, a, pid=pid, offset=offset)
        assert raw.answer == {"sid": sid, "pid": pid}, offset
        assert raw.message_ids()[:2] == [first["id"], missed["id"]], offset

    # A position past everything (the largest the format allows) is not one this server
    # reached: after waiting for it a little, a new session, nothing replayed, no error.
    await away(raw, db_target)
    raw = await back(runtime, cb, a, a, pid=pid, offset=f"v{'9' * 10}-{writer}.{'9' * 18}")
    assert raw.answer["sid"] != sid and raw.answer["pid"] != pid and raw.events == []
    sid, pid = raw.answer["sid"], raw.answer["pid"]

    # A position from this session's future but with nothing new of its writer: nothing replayed.
    last = await cb.send("seen live", recipientId=a.id)
    await raw.until_message(last["id"])
    await away(raw, db_target)
    raw = await back(runtime, cb, a, a, pid=pid, offset=f"v{'9' * 10}-{writer}.{newest_offset(last, raw)}")
    assert raw.answer == {"sid": sid, "pid": pid} and raw.events == []

    # Unknown or malformed pids: a new session, nothing replayed.
    for forged in ("x" * 24, "", 12345, None, "p" * 1000, {"pid": pid}):
        await away(raw, db_target)
        raw = await back(runtime, cb, a, a, pid=forged, offset="0")
        assert raw.answer["sid"] != sid and raw.answer["pid"] != pid, forged
        assert raw.events == [], forged
        sid, pid = raw.answer["sid"], raw.answer["pid"]


@pytest.mark.parametrize("setting_overrides", [RECOVERY])
@pytest.mark.gen_test(timeout=120)
async def test_after_a_voluntary_disconnect_no_session_is_kept(api, user_factory, chat, runtime, db_target):
    a, b = await user_factory("a"), await user_factory("b")
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))
    raw = await RawChat.connect(runtime.port, {"token": a.access})
    sid, pid = raw.answer["sid"], raw.answer["pid"]
    raw.leave()
    await cb.send("after a left", recipientId=a.id)
    raw.close()
    raw = await back(runtime, cb, a, a, pid=pid)
    assert raw.answer["sid"] != sid and raw.answer["pid"] != pid
    assert raw.events == []


@pytest.mark.parametrize("setting_overrides", [RECOVERY])
@pytest.mark.gen_test(timeout=120)
async def test_a_session_revoked_during_the_outage_is_refused(api, user_factory, chat, runtime, db_target):
    a, b = await user_factory("a"), await user_factory("b")
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))
    raw = await RawChat.connect(runtime.port, {"token": a.access})
    pid = await away(raw, db_target)
    await cb.send("while a was away", recipientId=a.id)
    out = await api.post("/api/auth/logout", token=a.access)
    assert out.status == 200, out.body
    raw = await RawChat.connect(runtime.port, {"token": a.access, "pid": pid})
    assert raw.refused is not None and raw.answer == {} and raw.events == []


@pytest.mark.parametrize("setting_overrides", [{**RECOVERY, "realtime_event_log_keep_s": 60}])
@pytest.mark.gen_test(timeout=120)
async def test_missed_events_the_log_no_longer_keeps_end_the_session_and_rest_answers_410(
        api, user_factory, chat, runtime, db_target):
    a, b = await user_factory("a"), await user_factory("b")
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))
    raw = await RawChat.connect(runtime.port, {"token": a.access})
    sid, pid = raw.answer["sid"], raw.answer["pid"]
    seen = await cb.send("seen", recipientId=a.id)
    await raw.until_message(seen["id"])
    offset = raw.events[-1][1][-1]
    await away(raw, db_target)
    await cb.send("missed, then swept", recipientId=a.id)
    kept_one = await cb.send("missed, still kept", recipientId=a.id)

    head = newest((await api.get("/api/chat/events", token=a.access)).data["nextAfter"])

    # A day passes (this test's own connection moves every event back): the sweep removes
    # all but the newest, which tells readers from before it what is gone.
    async with connection(db_target) as conn, conn.cursor() as cur:
        await cur.execute("UPDATE event_log SET created_at = created_at - INTERVAL 1 DAY")
    assert await sweep(runtime.db, dt.timedelta(seconds=60)) > 0

    raw = await back(runtime, cb, a, a, pid=pid, offset=offset)
    assert raw.answer["sid"] != sid and raw.answer["pid"] != pid     # not recovered
    assert raw.events == []
    assert_error(await api.get("/api/chat/events", params={"after": offset}, token=a.access), 410)
    page = (await api.get("/api/chat/events", params={"after": head - 1}, token=a.access)).data
    assert [e["data"]["id"] for e in page["events"]][:1] == [kept_one["id"]]
    assert_error(await api.get("/api/chat/events", params={"after": head - 2}, token=a.access), 410)


@pytest.mark.gen_test(timeout=60)
async def test_with_recovery_off_no_pid_no_offsets_and_a_pid_recovers_nothing(api, user_factory, chat,
                                                                             runtime):
    a, b = await user_factory("a"), await user_factory("b")
    cb = await chat(b, ["websocket"], ignore=("userStatusChanged",))
    raw = await RawChat.connect(runtime.port, {"token": a.access})
    assert set(raw.answer) == {"sid"}
    sid = raw.answer["sid"]
    sent = await cb.send("plain", recipientId=a.id)
    await raw.until_message(sent["id"])
    assert raw.events == [("message", [sent])]        # no offset argument
    raw.close()
    await cb.send("while away", recipientId=a.id)
    raw = await back(runtime, cb, a, a, pid="x" * 24, offset="0")
    assert set(raw.answer) == {"sid"} and raw.answer["sid"] != sid and raw.events == []
