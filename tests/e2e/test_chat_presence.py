"""Presence on /chat (docs/realtime.md#presence): online while at least one socket is connected, told
only to the people who know the user, heartbeats drop silent clients, deleted accounts are
disconnected."""
from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from tornado.websocket import websocket_connect

from .chat_support import make_group, quiet


async def status_of(api, user) -> str:
    response = await api.get("/api/auth/me", token=user.access)
    assert response.status == 200, response.body
    return response.data["status"]


async def save_contact(api, owner, other) -> None:
    response = await api.post("/api/contacts", json={"contactUserId": other.id}, token=owner.access)
    assert response.status == 201, response.body


def statuses(payloads) -> list[tuple[str, str]]:
    return [(p["userId"], p["status"]) for p in payloads]


@pytest.mark.gen_test(timeout=60)
async def test_second_tab_keeps_a_user_online(api, user_factory, chat):
    a, fan, saved = await user_factory("a"), await user_factory("fan"), await user_factory("saved")
    await save_contact(api, fan, a)       # fan saved a: fan is told about a
    await save_contact(api, a, saved)     # a saved `saved`: that shows a nothing
    c_fan, c_saved = await chat(fan, ["websocket"]), await chat(saved, ["websocket"])
    await c_fan.expect("userStatusChanged")
    await c_saved.expect("userStatusChanged")

    tab1 = await chat(a, ["websocket"])
    assert statuses(await tab1.expect("userStatusChanged")) == [(a.id, "online")]
    assert statuses(await c_fan.expect("userStatusChanged")) == [(a.id, "online")]
    assert await status_of(api, a) == "online"
    tab2 = await chat(a)                   # polling, then upgrade
    await quiet(c_fan, c_saved, tab1, tab2)

    # a message from one tab reaches the user's other tab, not the one that sent it
    sent = await tab1.send("from tab 1", recipientId=fan.id)
    assert await tab2.expect("message") == [sent]
    assert await c_fan.expect("message") == [sent]
    await quiet(tab1)

    await tab1.close()
    await quiet(c_fan, tab2)
    assert await status_of(api, a) == "online"
    await tab2.close()
    [change] = await c_fan.expect("userStatusChanged")
    assert (change["userId"], change["status"]) == (a.id, "offline") and change["lastSeenAt"].endswith("Z")
    assert await status_of(api, a) == "offline"
    await quiet(c_fan, c_saved)


@pytest.mark.gen_test(timeout=60)
async def test_presence_reaches_partners_and_co_members_only(api, user_factory, chat):
    a, partner, mate, stranger = [await user_factory(p) for p in ("a", "p", "m", "s")]
    await make_group(api, mate, [a])
    clients = [await chat(u, ["websocket"]) for u in (partner, mate, stranger)]
    for client in clients:
        await client.expect("userStatusChanged")
    ca = await chat(a, ["websocket"])
    await ca.expect("userStatusChanged")
    c_partner, c_mate, c_stranger = clients
    assert statuses(await c_mate.expect("userStatusChanged")) == [(a.id, "online")]
    await ca.send("hi", recipientId=partner.id)
    await c_partner.expect("message")
    await ca.close()
    assert statuses(await c_mate.expect("userStatusChanged")) == [(a.id, "offline")]
    assert statuses(await c_partner.expect("userStatusChanged")) == [(a.id, "offline")]
    await quiet(*clients)


@pytest.mark.parametrize("setting_overrides", [{"realtime_ping_interval_ms": 300,
                                                "realtime_ping_timeout_ms": 300}])
@pytest.mark.gen_test(timeout=60)
async def test_a_client_that_stops_answering_pings_is_dropped_and_marked_offline(
        api, user_factory, chat, runtime):
    silent, watcher = await user_factory("silent"), await user_factory("w")
    await save_contact(api, watcher, silent)
    cw = await chat(watcher, ["websocket"])
    await cw.expect("userStatusChanged")

    ws = await websocket_connect(f"ws://127.0.0.1:{runtime.port}/socket.io/?EIO=4&transport=websocket")
    opened = await ws.read_message()
    assert opened.startswith("0") and orjson.loads(opened[1:])["pingInterval"] == 300
    ws.write_message("40/chat," + orjson.dumps({"token": silent.access}).decode())
    assert (await ws.read_message()).startswith("40/chat,{\"sid\"")
    assert statuses(await cw.expect("userStatusChanged")) == [(silent.id, "online")]
    started = time.monotonic()
    pings = 0
    while True:                 # read everything, answer nothing
        frame = await asyncio.wait_for(ws.read_message(), 5)
        if frame is None:
            break
        pings += frame == "2"
    assert pings == 1 and time.monotonic() - started < 2
    assert statuses(await cw.expect("userStatusChanged")) == [(silent.id, "offline")]
    assert await status_of(api, silent) == "offline"
    await asyncio.sleep(0.7)    # the python client answers its pings and stays
    assert cw.sio.connected
    await quiet(cw)


@pytest.mark.gen_test(timeout=60)
async def test_deleting_an_account_disconnects_its_sockets(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    tab1, tab2 = await chat(a, ["websocket"]), await chat(a)
    cb = await chat(b, ["websocket"])
    await tab1.send("before", recipientId=b.id)
    response = await api.delete("/api/auth/delete-account", json={"password": a.password}, token=a.access)
    assert response.status == 200, response.body
    await asyncio.wait_for(tab1.disconnected.wait(), 5)
    await asyncio.wait_for(tab2.disconnected.wait(), 5)
    again = await chat(a, ["websocket"], wait=False)
    with pytest.raises(Exception):
        await again.connect()
    assert again.connect_errors[-1]["message"] == "Unauthorized"
    assert cb.sio.connected
