"""deploy/: the real Debian nginx, configured from deploy/nginx.conf, in front of the live test
server: REST, an upload, a static file served by nginx itself, nginx's own 413, and a
Socket.IO chat (polling, then the WebSocket upgrade) through the proxy. And the systemd unit
passes `systemd-analyze verify`."""
from __future__ import annotations

import asyncio
import io
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from PIL import Image

from nexus_chat.services import attachments as attachment_service

from .nginx_support import DEPLOY, render_site, running_nginx

from .chat_support import ChatClient
from .support import Api, assert_error

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def png(size: int = 32) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 90)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def nginx(runtime):
    attachment_dir = attachment_service.store_of(runtime.ctx).root
    attachment_dir.mkdir(parents=True, exist_ok=True)
    upstream = [("server 127.0.0.1:3000;", f"server 127.0.0.1:{runtime.port};")]
    with running_nginx(lambda port: render_site("nginx.conf", upstream, port, runtime.ctx.public_dir,
                                                attachment_dir)) as (url, _prefix):
        yield url


@pytest.fixture
def via_nginx(nginx):
    client = Api(nginx)
    yield client
    client.close()


@pytest.mark.gen_test(timeout=60)
async def test_rest_upload_and_static_files_through_nginx(via_nginx, user_factory):
    health = await via_nginx.get("/api/health")
    assert health.status == 200 and health.data == {"status": "ok", "database": "up"}
    assert health.headers["X-Request-Id"]                 # answered by the app
    assert "/" not in health.headers.get("Server", "")       # server_tokens off: no version
    assert_error(await via_nginx.get("/api/nope"), 404)
    metrics = await via_nginx.get("/metrics")               # loopback is allowed
    assert metrics.status == 200 and b"nexus_http_requests_total" in metrics.body

    user = await user_factory("ngx")
    image = png()
    response = await via_nginx.patch("/api/users/profile", token=user.access, form={"bio": "via nginx"},
                                     files={"avatar": ("me.png", image, "image/png")})
    assert response.status == 200, response.body
    avatar = response.data["avatarUrl"]
    assert re.fullmatch(r"/uploads/avatars/[0-9a-f-]{36}\.png", avatar), avatar
    assert response.data["bio"] == "via nginx"

    static = await via_nginx.get("/api/public" + avatar)
    assert static.status == 200
    assert static.body == image
    assert static.headers["Content-Type"] == "image/png"
    assert static.headers["X-Content-Type-Options"] == "nosniff"
    assert "X-Request-Id" not in static.headers          # served by nginx from disk, not the app
    # A missing file falls through to the app: its 404 envelope.
    missing = await via_nginx.get(f"/api/public/uploads/avatars/{uuid.uuid4()}.png")
    body = assert_error(missing, 404)
    assert missing.headers["X-Request-Id"] and body["path"].startswith("/api/public/")
    assert (await via_nginx.get("/api/public/uploads/.hidden")).status == 404

    # Over nginx's client_max_body_size: nginx answers, in the same envelope.
    huge = await via_nginx.post("/api/story", token=user.access, body=b"\0" * (22 * 1024 * 1024),
                                headers={"Content-Type": "application/octet-stream"})
    body = assert_error(huge, 413)
    assert body["error"] == "Payload Too Large"


@pytest.mark.parametrize("setting_overrides", [{"chat_attachment_accel_prefix": "/_nexus_attachments/"}])
@pytest.mark.gen_test(timeout=60)
async def test_attachments_are_checked_by_the_app_and_sent_by_nginx(via_nginx, user_factory):
    owner, stranger = await user_factory("att"), await user_factory("str")
    data = b"%PDF-1.4\n" + bytes(range(256)) * 64
    response = await via_nginx.post("/api/chat/attachments", token=owner.access,
                                    files={"file": ("report.pdf", data, "application/pdf")})
    assert response.status == 201, response.body
    shaped = response.data
    path = f"/api/chat/attachments/{shaped['id']}"

    whole = await via_nginx.get(path, token=owner.access)
    assert whole.status == 200 and whole.body == data
    assert whole.headers["Content-Type"] == "application/pdf"
    assert whole.headers["Content-Disposition"] == "attachment; filename*=UTF-8''report.pdf"
    assert whole.headers["X-Content-Type-Options"] == "nosniff"
    assert whole.headers["Content-Security-Policy"].startswith("sandbox")
    assert "X-Accel-Redirect" not in whole.headers
    part = await via_nginx.get(path, token=owner.access, headers={"Range": "bytes=100-199"})
    assert part.status == 206 and part.body == data[100:200]
    signed = await via_nginx.get(shaped["url"])                        # no token: signed URL
    assert signed.status == 200 and signed.body == data
    # The check is the app's: others get its 404 envelope, and the internal path is closed.
    assert_error(await via_nginx.get(path, token=stranger.access), 404)
    assert_error(await via_nginx.get(path), 401)
    assert (await via_nginx.get(f"/_nexus_attachments/{shaped['id']}")).status == 404


@pytest.mark.gen_test(timeout=60)
async def test_app_413_survives_nginx(via_nginx, user_factory):
    user = await user_factory("big")
    # Over the app's avatar limit (2 MB) but under nginx's (21 MB): the app's 413 envelope.
    for _ in range(3):
        big = await via_nginx.patch("/api/users/profile", token=user.access,
                                    files={"avatar": ("big.png", b"\0" * (3 * 1024 * 1024), "image/png")})
        assert_error(big, 413)


@pytest.mark.gen_test(timeout=60)
async def test_socketio_chat_through_nginx(nginx, user_factory):
    alice, bob = await user_factory("na"), await user_factory("nb")
    a = ChatClient(nginx, alice, ignore=("userStatusChanged",))
    b = ChatClient(nginx, bob, ignore=("userStatusChanged",))
    try:
        await a.connect()          # polling first, then the WebSocket upgrade through nginx
        await b.connect()
        assert a.transport == "websocket" and b.transport == "websocket"
        ack = await a.send("hello through nginx", recipientId=bob.id)
        assert ack["content"] == "hello through nginx"
        [message] = await b.expect("message")
        assert message["id"] == ack["id"] and message["senderId"] == alice.id
        reply = await b.send("and back", recipientId=alice.id)
        [received] = await a.expect("message")
        assert received["id"] == reply["id"]
    finally:
        await a.close()
        await b.close()


@pytest.mark.gen_test(timeout=60)
async def test_socketio_long_polling_only_through_nginx(nginx, user_factory):
    alice, bob = await user_factory("pa"), await user_factory("pb")
    a = ChatClient(nginx, alice, transports=["polling"], ignore=("userStatusChanged",))
    b = ChatClient(nginx, bob, transports=["polling"], ignore=("userStatusChanged",))
    try:
        await a.connect()
        await b.connect()
        assert b.transport == "polling"
        ack = await a.send("polled", recipientId=bob.id)
        [message] = await b.expect("message")
        assert message["id"] == ack["id"]
    finally:
        await a.close()
        await b.close()


def test_nginx_site_declares_what_deployment_needs():
    site = (DEPLOY / "nginx.conf").read_text()
    assert "client_max_body_size 21m;" in site
    assert "proxy_set_header Upgrade $http_upgrade;" in site
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in site
    assert "# ssl_certificate " in site and "# listen 443 ssl" in site


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies(tmp_path):
    unit = (DEPLOY / "nexus-chat.service").read_text()
    for line in ("ExecStart=/srv/nexus-chat/.venv/bin/nexus-chat serve", "Restart=on-failure",
                 "KillSignal=SIGTERM", "EnvironmentFile=/etc/nexus-chat/env", "NoNewPrivileges=yes",
                 "ProtectSystem=strict"):
        assert line in unit.splitlines(), line
    # Point ExecStart at this checkout's command so verify can check it is executable.
    exe = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "nexus-chat"
    if not exe.exists():
        exe = Path(shutil.which("nexus-chat") or "/bin/true")
    path = tmp_path / "nexus-chat.service"
    path.write_text(unit.replace("/srv/nexus-chat/.venv/bin/nexus-chat", str(exe)))
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(path)], capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and "nexus-chat.service" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


@pytest.mark.gen_test(timeout=60)
async def test_early_errors_keep_connections_usable_through_nginx(nginx, runtime):
    """401 -> retry on one client connection, through nginx's upstream keep-alive pool: every
    answer arrives (no 502 from an upstream connection the app dropped mid-body)."""
    from .test_http_connection import read_response, request

    host, port = nginx.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    # Large enough that the app has not read it all when it answers (it was reset then).
    body = b'{"contactUserId": "00000000-0000-4000-8000-000000000000"}' + b" " * 900_000
    for _ in range(10):
        writer.write(request("POST", "/api/contacts", body, {"Content-Type": "application/json"}))
        refused = await read_response(reader)
        assert refused.status == 401, refused
        # A POST is not retried by nginx on another upstream connection: it must just work.
        writer.write(request("POST", "/api/auth/refresh", b'{"refreshToken": "nope"}',
                             {"Content-Type": "application/json"}))
        assert (await read_response(reader)).status == 401
        writer.write(request("GET", "/api/health"))
        assert (await read_response(reader)).status == 200
    writer.close()
