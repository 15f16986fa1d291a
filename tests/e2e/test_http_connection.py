"""The HTTP connection as hostile and careless clients use it, over raw sockets: an early error
keeps the connection usable (or says `Connection: close`), aborted bodies are freed, slow bodies
are cut, oversize bodies/headers/URLs get their envelope, 405 says `Allow`, HEAD works."""
from __future__ import annotations

import asyncio
import gc
import json
import os
from dataclasses import dataclass

import pytest

from nexus_chat.web import MAX_REQUEST_BODY, BaseHandler

from .support import assert_error


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


async def read_response(reader: asyncio.StreamReader, method: str = "GET") -> RawResponse:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=15)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = 0 if method == "HEAD" else int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), timeout=15) if length else b""
    return RawResponse(status, headers, body)


def request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost"]
    hdrs = {"Content-Length": str(len(body)), **(headers or {})} if body or method in ("POST", "PUT", "PATCH") \
        else dict(headers or {})
    lines += [f"{k}: {v}" for k, v in hdrs.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def connect(runtime):
    return await asyncio.open_connection("127.0.0.1", runtime.port)


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), timeout=5) == b""
    except ConnectionResetError:
        return True


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def live_handlers() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, BaseHandler))


# ---- item 3: an early error does not poison the keep-alive connection ----------------------

@pytest.mark.gen_test(timeout=60)
async def test_the_connection_serves_the_next_request_after_an_early_error(runtime, user_factory):
    user = await user_factory()
    reader, writer = await connect(runtime)
    body = json.dumps({"contactUserId": user.id, "alias": "x" * 50}).encode()
    refusals = [
        # 401 -> refresh the token -> retry: the everyday flow, with and without a body.
        (request("GET", "/api/auth/me"), 401),
        (request("POST", "/api/contacts", body, {"Content-Type": "application/json"}), 401),
        (request("POST", "/api/contacts", body, {"Content-Type": "application/json",
                                                   "Authorization": "Bearer not-a-token"}), 401),
        (request("PUT", "/api/auth/login", body, {"Content-Type": "application/json"}), 405),
        (request("POST", "/api/nope", body, {"Content-Type": "application/json"}), 404),
        # declared over the route's limit: read, dropped, answered 413
        (request("POST", "/api/auth/login", b"{" + b" " * (2 << 20) + b"}",
                 {"Content-Type": "application/json"}), 413),
        (request("GET", "/api/auth/me", headers={"Authorization": f"Bearer {user.access}"}), 200),
    ]
    for raw, status in refusals:
        writer.write(raw)
        response = await read_response(reader)
        assert response.status == status, (raw[:60], response)
        assert response.headers.get("connection", "").lower() != "close", (raw[:60], response.headers)
        # ... and the same connection answers the next request.
        writer.write(request("GET", "/api/health"))
        health = await read_response(reader)
        assert health.status == 200 and health.json["data"]["status"] == "ok"
    writer.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_body_too_large_to_drain_is_answered_with_connection_close_and_never_parsed(runtime):
    reader, writer = await connect(runtime)
    # A body that looks like requests: if it were parsed as the next request, /api/health
    # would answer 200 on this connection.
    smuggled = request("GET", "/api/health") * 1000
    writer.write(request("POST", "/api/auth/me", headers={
        "Content-Length": str(MAX_REQUEST_BODY + 1), "Content-Type": "application/json"}))
    writer.write(smuggled)
    response = await read_response(reader)
    assert response.status in (405, 413)
    assert response.headers["connection"].lower() == "close"
    assert_envelope(response)
    try:
        rest = await asyncio.wait_for(reader.read(), timeout=5)
    except ConnectionResetError:
        rest = b""
    assert b"HTTP/1.1 200" not in rest


def assert_envelope(response: RawResponse, status: int | None = None) -> dict:
    body = response.json
    assert body["success"] is False and body["statusCode"] == response.status
    if status is not None:
        assert response.status == status
    return body


# ---- item 2: aborted and slow bodies -----------------------------------------------------

@pytest.mark.gen_test(timeout=120)
async def test_aborted_bodies_are_freed(runtime):
    """150 clients announce 1 MB login bodies, send 900 KB and go away. Bound: every handler
    is gone and RSS grows by less than 40 MB (it grew by ~150 MB while the bodies leaked)."""
    half = b" " * (900 * 1024)

    async def abort_one() -> None:
        reader, writer = await connect(runtime)
        writer.write(request("POST", "/api/auth/login", headers={
            "Content-Length": str(1 << 20), "Content-Type": "application/json"}) + half)
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.transport.abort()

    for _ in range(10):   # warm up the allocator
        await abort_one()
    await asyncio.sleep(0.3)
    before_rss, before_handlers = rss_mb(), live_handlers()
    for _ in range(15):
        await asyncio.gather(*(abort_one() for _ in range(10)))
    for _ in range(100):   # the server notices the closed connections (slower under load)
        if live_handlers() <= before_handlers and not runtime.ctx.inflight:
            break
        await asyncio.sleep(0.1)
    assert live_handlers() <= before_handlers
    assert not runtime.ctx.inflight
    grown = rss_mb() - before_rss
    assert grown < 40, f"RSS grew by {grown:.0f} MB after 150 aborted 1 MB bodies"


@pytest.mark.parametrize("setting_overrides", [{"server_body_timeout_s": 1}])
@pytest.mark.gen_test(timeout=60)
async def test_a_slow_body_is_cut_after_the_body_timeout(runtime):
    reader, writer = await connect(runtime)
    writer.write(request("POST", "/api/auth/login", headers={
        "Content-Length": "1000", "Content-Type": "application/json"}) + b'{"email": ')
    response = await read_response(reader)       # ~1 s later, without the rest of the body
    body = assert_envelope(response, 408)
    assert body["error"] == "Request Timeout"
    assert response.headers["connection"].lower() == "close"
    assert await closed_by_server(reader)
    writer.close()
    # A body trickled in a byte at a time is cut the same way.
    reader, writer = await connect(runtime)
    writer.write(request("POST", "/api/auth/login", headers={
        "Content-Length": "1000", "Content-Type": "application/json"}))

    async def trickle() -> None:
        while True:
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.1)

    task = asyncio.ensure_future(trickle())
    try:
        response = await read_response(reader)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert_envelope(response, 408)
    writer.close()


# ---- item 13 (HTTP): 405 Allow, HEAD, chunked past the ceiling, 431, 414 -----------------

@pytest.mark.gen_test
async def test_405_says_which_methods_are_allowed(api):
    body = assert_error(await api.put("/api/auth/login", json={}), 405)
    assert body["error"] == "Method Not Allowed"
    response = await api.put("/api/auth/login", json={})
    assert response.headers["Allow"] == "OPTIONS, POST"
    response = await api.post("/api/health", json={})
    assert response.status == 405 and response.headers["Allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.gen_test
async def test_head_on_get_routes(api, user_factory):
    user = await user_factory()
    for path, token in (("/api/health", None), ("/api/auth/me", user.access), ("/api/contacts", user.access)):
        get = await api.get(path, token=token)
        head = await api.request("HEAD", path, token=token)
        assert head.status == 200, (path, head.status)
        assert head.body == b""
        assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert (await api.request("HEAD", "/api/auth/me")).status == 401
    refused = await api.request("HEAD", "/api/auth/login")
    assert refused.status == 405 and "POST" in refused.headers["Allow"]


@pytest.mark.gen_test(timeout=60)
async def test_a_chunked_body_past_every_limit_gets_the_413_envelope(runtime):
    reader, writer = await connect(runtime)
    writer.write(b"POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % (1 << 20) + b" " * (1 << 20) + b"\r\n"
    for _ in range(MAX_REQUEST_BODY // (1 << 20) + 3):
        writer.write(chunk)
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    response = await read_response(reader)
    body = assert_envelope(response, 413)
    assert body["error"] == "Payload Too Large"
    writer.write(request("GET", "/api/health"))   # the body was drained: the connection lives
    assert (await read_response(reader)).status == 200
    writer.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_huge_header_is_431_and_a_huge_url_is_414(runtime):
    reader, writer = await connect(runtime)
    writer.write(request("GET", "/api/health", headers={"X-Padding": "a" * (64 * 1024)}))
    body = assert_envelope(await read_response(reader), 431)
    assert body["error"] == "Request Header Fields Too Large"
    writer.write(request("GET", "/api/health?" + "q=" + "b" * (100 * 1024)))
    body = assert_envelope(await read_response(reader), 414)
    assert body["error"] == "URI Too Long"
    writer.write(request("GET", "/api/health"))   # and the connection still works
    assert (await read_response(reader)).status == 200
    writer.close()


@pytest.mark.gen_test
async def test_413_is_payload_too_large_everywhere(api, user_factory):
    user = await user_factory()
    declared = await api.post("/api/auth/login", body=b"x" * (2 << 20),
                              headers={"Content-Type": "application/json"})
    assert assert_error(declared, 413)["error"] == "Payload Too Large"
    avatar = await api.patch("/api/users/profile", token=user.access,
                             files={"avatar": ("a.png", b"\x89PNG" + b"0" * (3 << 20), "image/png")})
    assert assert_error(avatar, 413)["error"] == "Payload Too Large"


# ---- issue 13: large bodies are read a few at a time -----------------------------------------

def upload_request(token: str, size: int) -> tuple[bytes, bytes]:
    """The head (request line, headers, the multipart part's headers) and the rest of an
    attachment upload of a ``size``-byte text file."""
    boundary = "SlotTestBoundary0123456789"
    part_head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n"
                 "Content-Type: text/plain\r\n\r\n").encode()
    rest = b"n" * size + f"\r\n--{boundary}--\r\n".encode()
    head = request("POST", "/api/chat/attachments", headers={
        "Content-Length": str(len(part_head) + len(rest)), "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}"}) + part_head
    return head, rest


# One user holds more uploads at once than uploads.concurrent_per_user lets an account (3).
MANY_UPLOADS = {"uploads_concurrent_per_user": 16}


@pytest.mark.parametrize("setting_overrides", [MANY_UPLOADS])
@pytest.mark.gen_test(timeout=90)
async def test_uploads_wait_for_a_body_slot_and_get_it_when_one_frees(runtime, user_factory, monkeypatch):
    """STREAM_SLOTS uploads whose clients stall hold every slot; the next upload waits (its
    body is not read) and goes through as soon as one of them is finished or abandoned; every
    slot is free again afterwards. Nothing is refused."""
    from nexus_chat import intake
    monkeypatch.setattr(intake, "STREAM_WAIT_S", 600)   # only a freed slot can let it in
    streams = runtime.ctx.body_streams
    user = await user_factory()
    size = intake.LARGE_BODY + 1000

    stalled = []
    for _ in range(intake.STREAM_SLOTS):
        reader, writer = await connect(runtime)
        head, rest = upload_request(user.access, size)
        writer.write(head + rest[:1000])
        await writer.drain()
        stalled.append((reader, writer, rest[1000:]))
    for _ in range(200):
        if streams.taken == intake.STREAM_SLOTS:
            break
        await asyncio.sleep(0.05)
    assert streams.taken == intake.STREAM_SLOTS

    reader, writer = await connect(runtime)
    head, rest = upload_request(user.access, size)
    writer.write(head + rest)   # all of it; the server does not read it yet
    await writer.drain()
    for _ in range(200):
        if streams.waiting == 1:
            break
        await asyncio.sleep(0.05)
    assert streams.waiting == 1 and streams.taken == intake.STREAM_SLOTS

    stalled[0][1].transport.abort()   # one stalled client goes away: its slot frees
    response = await read_response(reader)
    assert response.status == 201, response.body
    assert response.json["data"]["size"] == size and response.json["data"]["name"] == "notes.txt"
    writer.close()

    for reader, writer, remainder in stalled[1:]:   # the others finish their bodies
        writer.write(remainder)
        await writer.drain()
        assert (await read_response(reader)).status == 201
        writer.close()
    assert streams.taken == 0 and streams.waiting == 0


@pytest.mark.parametrize("setting_overrides", [MANY_UPLOADS])
@pytest.mark.gen_test(timeout=60)
async def test_small_bodies_never_wait_for_a_body_slot(runtime, user_factory, monkeypatch):
    """With every slot held by stalled uploads, JSON requests and small uploads are served."""
    from nexus_chat import intake
    monkeypatch.setattr(intake, "STREAM_WAIT_S", 600)
    streams = runtime.ctx.body_streams
    user = await user_factory()
    stalled = []
    for _ in range(intake.STREAM_SLOTS):
        reader, writer = await connect(runtime)
        head, rest = upload_request(user.access, intake.LARGE_BODY + 1000)
        writer.write(head)
        await writer.drain()
        stalled.append(writer)
    for _ in range(200):
        if streams.taken == intake.STREAM_SLOTS:
            break
        await asyncio.sleep(0.05)
    assert streams.taken == intake.STREAM_SLOTS

    reader, writer = await connect(runtime)
    head, rest = upload_request(user.access, 1000)
    writer.write(head + rest)
    assert (await read_response(reader)).status == 201
    writer.write(request("PATCH", "/api/users/profile", body=json.dumps({"bio": "still here"}).encode(),
                         headers={"Authorization": f"Bearer {user.access}", "Content-Type": "application/json"}))
    response = await read_response(reader)
    assert response.status == 200 and response.json["data"]["bio"] == "still here"
    assert streams.waiting == 0
    writer.close()
    for stalled_writer in stalled:
        stalled_writer.transport.abort()
    for _ in range(200):
        if streams.taken == 0:
            break
        await asyncio.sleep(0.05)
    assert streams.taken == 0


@pytest.mark.parametrize("setting_overrides", [MANY_UPLOADS])
@pytest.mark.gen_test(timeout=60)
async def test_a_body_slot_frees_when_the_body_is_in_not_when_the_upload_is_processed(
        runtime, user_factory, monkeypatch):
    from nexus_chat import intake
    streams, media = runtime.ctx.body_streams, runtime.ctx.media
    gate = asyncio.Event()
    real_run = media.run

    async def gated_run(*args, **kwargs):
        await gate.wait()
        return await real_run(*args, **kwargs)

    monkeypatch.setattr(media, "run", gated_run)
    user = await user_factory()
    clients = []
    for _ in range(intake.STREAM_SLOTS + 2):
        reader, writer = await connect(runtime)
        head, rest = upload_request(user.access, intake.LARGE_BODY + 1000)
        writer.write(head + rest)
        clients.append((reader, writer))
    for _ in range(200):   # every body read (processing held at the gate), every slot free
        if streams.taken == 0 and streams.waiting == 0 and len(runtime.ctx.inflight) >= len(clients):
            break
        await asyncio.sleep(0.05)
    assert streams.taken == 0 and streams.waiting == 0
    gate.set()
    for reader, writer in clients:
        assert (await read_response(reader)).status == 201
        writer.close()
