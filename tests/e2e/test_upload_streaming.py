"""Upload bodies stream to disk (nexus_chat/spool.py, docs/api.md#uploads-and-static-files):
a file past its limit is answered 413 while it is still arriving, a body cut short or a
client that goes away leaves no temporary file, malformed multipart is a 400, concurrent
uploads are capped (429), and the server's memory does not grow with the uploads in flight."""
from __future__ import annotations

import asyncio
import os
import re
import uuid
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from nexus_chat.services import attachments as attachment_service
from nexus_chat.spool import TEMP_PREFIX

from .server_process import ServerProcess
from .support import Api, assert_error, make_user, multipart

MB = 2**20
BOUNDARY = "streamtestboundary"


def temp_files(runtime) -> list[Path]:
    root = attachment_service.store_of(runtime.ctx).root
    return sorted(root.glob(TEMP_PREFIX + "*")) if root.is_dir() else []


async def eventually(check, what: str, timeout_s: float = 15) -> None:
    """Polls until ``check()`` holds (clean-up runs in an executor after the answer)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.05)


def file_part_head(name: str = "file", filename: str = "doc.pdf") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/pdf\r\n\r\n").encode()


async def open_upload(port: int, token: str, length: int, first: bytes):
    """A raw upload: the headers announce ``length`` bytes, ``first`` of them are sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((f"POST /api/chat/attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Authorization: Bearer {token}\r\n"
                  f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                  f"Content-Length: {length}\r\n\r\n").encode() + first)
    await writer.drain()
    return reader, writer


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status = int(head.split(b" ")[1])
    length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
    return status, await asyncio.wait_for(reader.readexactly(length), 10)


@pytest.mark.parametrize("setting_overrides", [{"chat_attachment_max_bytes": 64 * 1024}])
@pytest.mark.gen_test(timeout=60)
async def test_a_file_past_its_limit_is_answered_413_while_it_streams(runtime, user_factory):
    me = await user_factory("big")
    announced = 4 * MB          # within the request ceiling, so the headers alone pass
    reader, writer = await open_upload(runtime.port, me.access, announced,
                                       file_part_head() + b"%PDF-" + os.urandom(256 * 1024))
    # The rest is never sent: the answer must come from what arrived so far.
    status, body = await read_answer(reader)
    assert status == 413 and b'"success":false' in body and b"file exceeds" in body
    writer.close()
    await eventually(lambda: not temp_files(runtime), "the temporary file was not removed")
    await eventually(lambda: runtime.ctx.upload_gate.count == 0, "the upload turn was not given back")


@pytest.mark.gen_test(timeout=60)
async def test_a_client_that_goes_away_mid_upload_leaves_no_temporary_file(runtime, user_factory):
    me = await user_factory("gone")
    reader, writer = await open_upload(runtime.port, me.access, 8 * MB,
                                       file_part_head() + b"%PDF-" + os.urandom(2 * MB))
    await eventually(lambda: temp_files(runtime), "no temporary file was written while streaming")
    assert runtime.ctx.upload_gate.count == 1
    writer.close()
    await eventually(lambda: not temp_files(runtime), "the temporary file outlived its request")
    await eventually(lambda: runtime.ctx.upload_gate.count == 0, "the upload turn was not given back")
    assert not list(attachment_service.store_of(runtime.ctx).root.iterdir())


@pytest.mark.gen_test(timeout=60)
async def test_a_truncated_or_malformed_form_is_400_and_leaves_nothing(runtime, user_factory, api):
    me = await user_factory("bad")
    data = b"%PDF-" + os.urandom(600 * 1024)
    cases = [
        file_part_head() + data,                                            # no closing boundary
        file_part_head() + data + f"\r\n--{BOUNDARY}\r\n\r\nno headers\r\n--{BOUNDARY}--\r\n".encode(),
        b"garbage before the boundary\r\n" + file_part_head() + data + f"\r\n--{BOUNDARY}--\r\n".encode(),
        file_part_head(name="other") + data + f"\r\n--{BOUNDARY}--\r\n".encode(),   # an unknown field
    ]
    for body in cases:
        reader, writer = await open_upload(runtime.port, me.access, len(body), body)
        status, answer = await read_answer(reader)
        writer.close()
        assert status == 400, answer
        assert b'"success":false' in answer
    response = await api.post("/api/chat/attachments", token=me.access, body=b"--x--\r\n",
                              headers={"Content-Type": "multipart/form-data"})   # no boundary
    assert_error(response, 400)
    await eventually(lambda: not temp_files(runtime), "a refused upload left its temporary file")
    assert runtime.ctx.upload_gate.count == 0
    # Still fine afterwards, with the file streamed in pieces of every size.
    body, content_type = multipart({}, {"file": ("ok.pdf", data, "application/pdf")})
    response = await api.post("/api/chat/attachments", token=me.access, body=body,
                              headers={"Content-Type": content_type})
    assert response.status == 201, response.body
    stored = attachment_service.store_of(runtime.ctx).path(response.data["id"])
    assert stored.read_bytes() == data


@pytest.mark.parametrize("setting_overrides", [{"uploads_concurrent_per_user": 2}])
@pytest.mark.gen_test(timeout=60)
async def test_concurrent_uploads_per_user_are_capped(runtime, user_factory, api):
    me, other = await user_factory("many"), await user_factory("other")
    held = [await open_upload(runtime.port, me.access, 4 * MB, file_part_head() + b"%PDF-")
            for _ in range(2)]
    await eventually(lambda: runtime.ctx.upload_gate.active.get(me.id) == 2, "the uploads did not start")
    response = await api.post("/api/chat/attachments", token=me.access,
                              files={"file": ("a.txt", b"third", "text/plain")})
    assert_error(response, 429)
    assert response.headers["Retry-After"] == "1"
    response = await api.post("/api/chat/attachments", token=other.access,
                              files={"file": ("a.txt", b"someone else", "text/plain")})
    assert response.status == 201, response.body
    for _, writer in held:
        writer.close()
    await eventually(lambda: runtime.ctx.upload_gate.count == 0, "the upload turns were not given back")
    response = await api.post("/api/chat/attachments", token=me.access,
                              files={"file": ("a.txt", b"now it fits", "text/plain")})
    assert response.status == 201, response.body
    await eventually(lambda: not temp_files(runtime), "a temporary file was left behind")


# ---- memory, measured from outside on a `nexus-chat serve` process ---------------------------
UPLOADS = 8
UPLOAD_BYTES = 16 * MB
# Buffered, 8 uploads of 16 MB held ~8 × 16 MB plus the copies made while parsing; streamed,
# the process holds a 256 KiB batch per upload and one file per media-pool thread while it
# checks it. Generous: a third of what the uploads weigh together.
RSS_GROWTH_BOUND = UPLOADS * UPLOAD_BYTES // 3


@pytest.fixture
def live(tmp_path, db_server, mail_sink):
    server = ServerProcess(tmp_path, db_server, mail_sink.port, NEXUS_UPLOADS_PER_USER=str(UPLOADS))
    yield server
    server.stop()


def peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1)) * 1024


@pytest.mark.gen_test(timeout=300)
async def test_memory_does_not_grow_with_the_uploads_in_flight(live, mail_sink):
    api = Api(live.base_url)
    try:
        me = await make_user(api, mail_sink, "mem")
        await asyncio.sleep(1.0)
        idle = max(live.rss_bytes(), peak_rss(live.process.pid))
        http = AsyncHTTPClient(force_instance=True, max_clients=UPLOADS)
        bodies = []
        for _ in range(UPLOADS):
            data = b"%PDF-" + os.urandom(UPLOAD_BYTES - 5)
            bodies.append(multipart({}, {"file": (f"{uuid.uuid4().hex}.pdf", data, "application/pdf")}))
        responses = await asyncio.gather(*(http.fetch(HTTPRequest(
            live.base_url + "/api/chat/attachments", method="POST", body=body,
            headers={"Authorization": f"Bearer {me.access}", "Content-Type": content_type},
            request_timeout=120), raise_error=False) for body, content_type in bodies))
        http.close()
        assert [r.code for r in responses] == [201] * UPLOADS, [r.body[:200] for r in responses]
        growth = peak_rss(live.process.pid) - idle
        print(f"peak RSS growth during {UPLOADS} uploads of {UPLOAD_BYTES // MB} MB: {growth / MB:.0f} MB")
        assert growth < RSS_GROWTH_BOUND
        assert live.alive() and not live.log_problems()
        leftovers = list((live.workdir / "var" / "attachments").glob(TEMP_PREFIX + "*"))
        assert leftovers == []
    finally:
        api.close()


@pytest.mark.gen_test(timeout=120)
async def test_uploads_go_on_after_a_media_worker_dies(runtime, user_factory, api):
    """The media pool is processes (media_pool.py); one killed (out of memory, say) must not
    leave every later upload failing."""
    import signal
    me = await user_factory("worker")
    png = _png()
    first = await api.post("/api/chat/attachments", token=me.access, files={"file": ("a.png", png, "image/png")})
    assert first.status == 201, first.body
    workers = list(runtime.ctx.media._executor._processes.values())
    assert workers
    for process in workers:
        os.kill(process.pid, signal.SIGKILL)
    again = await api.post("/api/chat/attachments", token=me.access, files={"file": ("b.png", png, "image/png")})
    assert again.status == 201, again.body
    assert again.data["kind"] == "image" and "thumbnailUrl" in again.data


def _png() -> bytes:
    import io
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("setting_overrides", [{"chat_attachment_dir": "/dev/null/attachments"}])
@pytest.mark.gen_test(timeout=60)
async def test_an_upload_that_cannot_be_written_is_503_not_500(runtime, user_factory, api):
    """Disk full, or a directory that cannot be written: a clear answer to retry later."""
    me = await user_factory("full")
    for size in (1000, 3 * MB):     # written at the end of the body, and while it streams
        response = await api.post("/api/chat/attachments", token=me.access,
                                  files={"file": ("a.pdf", b"%PDF-" + bytes(size), "application/pdf")})
        assert_error(response, 503)
        assert response.headers["Retry-After"] == "30"
    assert runtime.ctx.upload_gate.count == 0
