"""A revoked session's access tokens stop working at once, on REST and on the Socket.IO
handshake, and its connected sockets are disconnected: logout, password change, password
reset, refresh-token reuse, and a revocation made by another process."""
from __future__ import annotations

import asyncio

import jwt
import pytest

from .support import assert_error, link_in, token_of


async def second_session(api, user) -> dict:
    login = await api.post("/api/auth/login", json={"email": user.email, "password": user.password})
    assert login.status == 200, login.body
    return login.data


async def refused(api, chat, user, access: str) -> None:
    """The token gets 401 on REST (including /auth/me) and the handshake is refused."""
    assert_error(await api.get("/api/auth/me", token=access), 401, "Invalid or expired token")
    assert_error(await api.get("/api/chat/recent-messages", token=access), 401)
    client = await chat(user, ["websocket"], auth={"token": access}, wait=False)
    with pytest.raises(Exception):
        await client.connect()
    assert client.connect_errors and client.connect_errors[0]["message"] == "Unauthorized"


async def gone(client, timeout: float = 5) -> None:
    await asyncio.wait_for(client.disconnected.wait(), timeout)


@pytest.mark.gen_test(timeout=60)
async def test_logout_revokes_that_session_only(api, user_factory, chat):
    user = await user_factory()
    other = await second_session(api, user)
    here = await chat(user, ["websocket"])
    there = await chat(user, ["websocket"], auth={"token": other["accessToken"]})

    assert (await api.post("/api/auth/logout", token=user.access)).status == 200
    await gone(here)
    await refused(api, chat, user, user.access)
    # the other device is still logged in and connected
    assert (await api.get("/api/auth/me", token=other["accessToken"])).status == 200
    await asyncio.sleep(0.2)
    assert there.sio.connected and not there.disconnected.is_set()
    assert (await there.call("typing", {"recipientId": user.id, "isTyping": True}))["success"] is False


@pytest.mark.gen_test(timeout=60)
async def test_password_change_disconnects_every_other_session_at_once(api, user_factory, chat):
    user = await user_factory()
    other = await second_session(api, user)
    there = await chat(user, ["websocket"], auth={"token": other["accessToken"]})
    changed = await api.post("/api/auth/change-password", token=user.access,
                             json={"oldPassword": user.password, "newPassword": "another-pass-2"})
    assert changed.status == 200
    await gone(there)
    await refused(api, chat, user, other["accessToken"])
    await refused(api, chat, user, user.access)   # "Please login again": this session too
    assert_error(await api.post("/api/auth/refresh", json={"refreshToken": other["refreshToken"]}), 401)
    fresh = await api.post("/api/auth/login", json={"email": user.email, "password": "another-pass-2"})
    assert (await api.get("/api/auth/me", token=fresh.data["accessToken"])).status == 200


@pytest.mark.gen_test(timeout=60)
async def test_password_reset_disconnects_every_session(api, user_factory, chat, mail_sink):
    user = await user_factory()
    other = await second_session(api, user)
    sockets = [await chat(user, ["websocket"]),
               await chat(user, ["websocket"], auth={"token": other["accessToken"]})]
    assert (await api.post("/api/auth/forgot-password", json={"email": user.email})).status == 200
    token = token_of(link_in(await mail_sink.wait_for(user.email, count=2)))
    reset = await api.post("/api/auth/reset-password", json={"token": token, "newPassword": "reset-pass-3"})
    assert reset.status == 200, reset.body
    for client in sockets:
        await gone(client)
    for access in (user.access, other["accessToken"]):
        await refused(api, chat, user, access)


@pytest.mark.gen_test(timeout=60)
async def test_refresh_token_reuse_kills_the_session_and_its_access_tokens(api, user_factory, chat):
    user = await user_factory()
    rotated = await api.post("/api/auth/refresh", json={"refreshToken": user.refresh})
    assert rotated.status == 200
    new_access = rotated.data["accessToken"]
    client = await chat(user, ["websocket"], auth={"token": new_access})
    # the old refresh token comes back: someone kept a copy
    assert_error(await api.post("/api/auth/refresh", json={"refreshToken": user.refresh}), 401)
    await gone(client)
    for access in (user.access, new_access):
        await refused(api, chat, user, access)


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("setting_overrides", [{"auth_revocation_poll_s": 1}])
async def test_a_revocation_by_another_process_applies_within_the_poll_interval(api, user_factory, chat,
                                                                               runtime):
    user = await user_factory()
    client = await chat(user, ["websocket"])
    claims = jwt.decode(user.access, options={"verify_signature": False})
    # What another process's logout writes: the row, and nothing in this process's memory.
    await runtime.db.execute("UPDATE sessions SET revoked_at = UTC_TIMESTAMP(3) WHERE id = %s",
                             (claims["sid"],))
    await gone(client, timeout=5)   # polled every second; without the poll, never
    await refused(api, chat, user, user.access)


@pytest.mark.gen_test(timeout=30)
async def test_an_access_token_without_a_session_is_refused(api, user_factory, chat, runtime):
    user = await user_factory()
    claims = jwt.decode(user.access, options={"verify_signature": False})
    del claims["sid"]
    forged = jwt.encode(claims, runtime.settings.jwt_access_secret, algorithm="HS256")
    await refused(api, chat, user, forged)
    assert (await api.get("/api/auth/me", token=user.access)).status == 200
