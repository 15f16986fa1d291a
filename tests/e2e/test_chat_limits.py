"""The product's Socket.IO endpoint under careless and hostile clients (issue 9 items 5, 12, 13):
the limits' settings, their answers in the error envelope, and that a real client is not hurt."""
from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.tcpclient import TCPClient
from tornado.websocket import websocket_connect

from .chat_support import ChatClient
from .support import assert_error

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


def sid_of(response) -> str:
    return json.loads(response.body[1:])["sid"]


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("setting_overrides", [{"realtime_max_payload": 2048}])
async def test_engineio_post_over_max_payload_is_413_in_the_envelope(api):
    sid = sid_of(await api.get(HANDSHAKE))
    response = await api.post(f"{HANDSHAKE}&sid={sid}", body=b"4" + b"x" * 4096,
                              headers={"Content-Type": "text/plain;charset=UTF-8"})
    body = assert_error(response, 413, "Payload too large")
    assert body["error"] == "Payload Too Large" and body["code"] == 3
    assert_error(await api.get(f"{HANDSHAKE}&sid={sid}"), 400, "Session ID unknown")


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("setting_overrides", [{"server_rate_limits": True}])
async def test_handshakes_count_against_the_per_ip_rate_limit(api):
    """1,000 requests a minute per IP, REST and Engine.IO handshakes together."""
    ip = "203.0.113.7"
    statuses = []
    for _ in range(1000):
        response = await api.get(HANDSHAKE, headers={"X-Forwarded-For": ip})
        statuses.append(response.status)
        if response.status == 200:  # leave at once: only the rate limit is tested here
            await api.post(f"{HANDSHAKE}&sid={sid_of(response)}", body=b"1", headers={"X-Forwarded-For": ip})
    assert 429 not in statuses[:400]  # two requests per handshake: ~500 handshakes fit
    limited = await api.get(HANDSHAKE, headers={"X-Forwarded-For": ip})
    body = assert_error(limited, 429)
    assert body["error"] == "Too Many Requests" and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert (await api.get("/api/health", headers={"X-Forwarded-For": ip})).status == 429
    assert (await api.get(HANDSHAKE, headers={"X-Forwarded-For": "203.0.113.8"})).status == 200


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("setting_overrides", [{"server_rate_limits": True,
                                                "realtime_max_unauthenticated_per_ip": 5}])
async def test_sessions_that_never_authenticate_are_capped_per_ip(api, runtime, user_factory):
    ip = "198.51.100.1"
    first = [await api.get(HANDSHAKE, headers={"X-Forwarded-For": ip}) for _ in range(5)]
    assert [r.status for r in first] == [200] * 5
    refused = await api.get(HANDSHAKE, headers={"X-Forwarded-For": ip})
    assert_error(refused, 429, "Too many unauthenticated connections")
    assert int(refused.headers["Retry-After"]) >= 1
    # over WebSocket too, before the upgrade
    ws = runtime.base_url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    with pytest.raises(HTTPClientError) as refused_ws:
        await websocket_connect(HTTPRequest(ws, headers={"X-Forwarded-For": ip}))
    assert refused_ws.value.code == 429
    # `/` proves nothing; a user who logs in on /chat frees the place and chats
    user = await user_factory()
    client = ChatClient(runtime.base_url, user, ["websocket"], headers={"X-Forwarded-For": ip})
    sid = sid_of(first[0])
    await api.post(f"{HANDSHAKE}&sid={sid}", body=b"40", headers={"X-Forwarded-For": ip})
    assert (await api.get(HANDSHAKE, headers={"X-Forwarded-For": ip})).status == 429
    await api.post(f"{HANDSHAKE}&sid={sid}", body=b"1", headers={"X-Forwarded-For": ip})
    await client.connect()
    assert await client.call("getMessages", {"recipientId": user.id}) is not None
    await client.sio.disconnect()


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("setting_overrides", [{"realtime_connect_timeout_ms": 300}])
async def test_a_session_only_in_the_main_namespace_meets_the_connect_timeout(api):
    sid = sid_of(await api.get(HANDSHAKE))
    assert (await api.post(f"{HANDSHAKE}&sid={sid}", body=b"40")).status == 200
    poll = await api.get(f"{HANDSHAKE}&sid={sid}")
    assert poll.body.startswith(b"40{")
    await asyncio.sleep(0.5)
    poll = await api.get(f"{HANDSHAKE}&sid={sid}")
    assert poll.status == 400 or poll.body == b"1"


@pytest.mark.gen_test(timeout=60)
async def test_of_two_concurrent_polls_the_first_connection_gets_the_close(api, runtime):
    """A careless client polling twice at once: as on the conformance server, the GET on the
    connection opened first gets CLOSE, the other 400, whichever the server reads first."""
    sid = sid_of(await api.get(HANDSHAKE))
    request = f"GET {HANDSHAKE}&sid={sid} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    first = await TCPClient().connect("127.0.0.1", runtime.port)
    second = await TCPClient().connect("127.0.0.1", runtime.port)
    await second.write(request)
    await asyncio.sleep(0.05)
    await first.write(request)
    answers = []
    for stream in (first, second):
        head = (await stream.read_until(b"\r\n\r\n")).decode()
        length = int(head.lower().split("content-length:")[1].split("\r\n")[0])
        answers.append((int(head.split(" ")[1]), await stream.read_bytes(length)))
    assert answers[0] == (200, b"1")
    assert answers[1][0] == 400 and json.loads(answers[1][1])["statusCode"] == 400
