"""Test helpers: a small API client, a mail sink, and user factories. No mocks: these
talk to the real server over a real socket and read real mails."""
from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import orjson
import pymysql
from aiosmtpd.controller import Controller
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from nexus_chat.config import SETTINGS
from nexus_chat.migrate import apply_migrations, migration_files


@dataclass
class Response:
    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def data(self) -> Any:
        return self.json["data"]

    @property
    def message(self) -> str:
        return self.json["message"]


class Api:
    """`await api.post("/api/auth/login", json={...}, token=...)` against the live server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.client = AsyncHTTPClient(force_instance=True)

    async def request(self, method: str, path: str, *, json: Any = None, body: bytes | None = None,
                      token: str | None = None, headers: dict[str, str] | None = None,
                      params: dict[str, Any] | None = None, follow_redirects: bool = False,
                      files: dict[str, tuple[str, bytes, str]] | None = None,
                      form: dict[str, str] | None = None) -> Response:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        if json is not None:
            body = orjson.dumps(json)
            hdrs.setdefault("Content-Type", "application/json")
        if files is not None or form is not None:
            body, content_type = multipart(form or {}, files or {})
            hdrs["Content-Type"] = content_type
        url = self.base_url + path
        if params:
            url += "?" + urlencode(params)
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        request = HTTPRequest(url, method=method, headers=hdrs, body=body,
                              follow_redirects=follow_redirects, request_timeout=30,
                              allow_nonstandard_methods=True)
        response = await self.client.fetch(request, raise_error=False)
        if response.code == 599:
            raise response.error
        return Response(response.code, response.headers, response.body or b"")

    async def get(self, path: str, **kw: Any) -> Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Response:
        return await self.request("POST", path, **kw)

    async def put(self, path: str, **kw: Any) -> Response:
        return await self.request("PUT", path, **kw)

    async def patch(self, path: str, **kw: Any) -> Response:
        return await self.request("PATCH", path, **kw)

    async def delete(self, path: str, **kw: Any) -> Response:
        return await self.request("DELETE", path, **kw)

    def close(self) -> None:
        self.client.close()


def multipart(form: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in form.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                     + str(value).encode() + b"\r\n")
    for name, (filename, data, content_type) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class _Collector:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler API
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"


class MailSink:
    """A real SMTP server (aiosmtpd, in its own thread) that keeps every message."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.collector = _Collector()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None

    def messages_to(self, recipient: str) -> list[email.message.EmailMessage]:
        with self.collector.lock:
            return [m for m in self.collector.messages if m["To"] == recipient]

    async def wait_for(self, recipient: str, count: int = 1, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages_to(recipient)
            if len(found) >= count:
                return found[count - 1]
            await asyncio.sleep(0.02)
        raise AssertionError(f"no mail #{count} for {recipient} within {timeout} s")


def link_in(message, pattern: str = r"https?://\S+") -> str:
    text = message.get_body(("plain",)).get_content()
    match = re.search(pattern, text)
    assert match, f"no link in mail: {text!r}"
    return match.group(0)


def token_of(link: str) -> str:
    return parse_qs(urlparse(link).query)["token"][0]


@dataclass
class User:
    id: str
    username: str
    full_name: str
    email: str
    password: str
    access: str = ""
    refresh: str = ""
    extra: dict = field(default_factory=dict)


def new_identity(prefix: str = "u") -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {"username": f"{prefix}_{tag}", "fullName": f"{prefix.title()} {tag}",
            "email": f"{prefix}.{tag}@example.test", "password": "secret-pass-1"}


async def register(api: Api, **overrides: str) -> tuple[dict, Response]:
    identity = {**new_identity(), **overrides}
    return identity, await api.post("/api/auth/register", json=identity)


async def verify_via_mail(api: Api, sink: MailSink, address: str) -> None:
    message = await sink.wait_for(address)
    link = link_in(message)
    path = urlparse(link)
    response = await api.get(f"{path.path}?{path.query}")
    assert response.status == 302, response.body
    assert response.headers["Location"].endswith("status=success")


async def make_user(api: Api, sink: MailSink, prefix: str = "u", **overrides: str) -> User:
    """Register, verify through the real mail, and log in."""
    identity, response = await register(api, **{**new_identity(prefix), **overrides})
    assert response.status == 201, response.body
    await verify_via_mail(api, sink, identity["email"])
    login = await api.post("/api/auth/login", json={"email": identity["email"], "password": identity["password"]})
    assert login.status == 200, login.body
    return User(id=login.data["userId"], username=identity["username"], full_name=identity["fullName"],
                email=identity["email"], password=identity["password"],
                access=login.data["accessToken"], refresh=login.data["refreshToken"])


def assert_error(response: Response, status: int, message: str | None = None) -> dict:
    """The canonical error envelope (docs/api.md#envelope)."""
    assert response.status == status, (response.status, response.body)
    body = response.json
    assert body["success"] is False
    assert body["statusCode"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert body["path"].startswith("/")
    assert body["timestamp"].endswith("Z")
    if message is not None:
        assert body["message"] == message, body
    return body


def drop_database(db_server: tuple[str, int, str, str], name: str) -> None:
    """Remove a database a test created (db_server is the session fixture's tuple)."""
    host, port, user, password = db_server
    conn = pymysql.connect(host=host, port=port, user=user, password=password)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


def clean_env(tmp_path: Path, **env: str) -> dict[str, str]:
    """Only what the test sets: no setting leaks in from the developer's environment."""
    setting_vars = {var for s in SETTINGS for var in s.env} | {"NEXUS_CONFIG"}
    base = {k: v for k, v in os.environ.items() if k not in setting_vars}
    base.update(NEXUS_CONFIG=str(tmp_path / "absent.toml"), NEXUS_VAR_DIR=str(tmp_path / "var"))
    base.update(env)
    return base


def db_env(db_server, name: str) -> dict[str, str]:
    host, port, user, password = db_server
    return {"DB_HOST": host, "DB_PORT": str(port), "DB_USERNAME": user, "DB_PASSWORD": password,
            "DB_NAME": name}


def migrations_before(folder: Path, number: int) -> Path:
    """sql/ as a previous version had it: every migration numbered below ``number``, copied
    into ``folder/sql`` (for the tests that a migration applies on top of older data)."""
    earlier = folder / "sql"
    earlier.mkdir(parents=True)
    for path in migration_files():
        if int(path.name[:3]) < number:
            shutil.copy(path, earlier / path.name)
    return earlier


class EarlierSchema:
    """For the tests that a migration applies on top of older data: a database of its own as
    a previous version left it (every migration numbered below ``number`` applied: their names
    in ``applied``), a connection to it (``conn``: autocommit, UTC, utf8mb4) to write that
    version's rows, and ``upgrade()`` to apply what came after. Dropped at the end of the
    ``with`` block."""

    def __init__(self, db_server: tuple[str, int, str, str], tmp_path: Path, number: int) -> None:
        host, port, user, password = db_server
        self.db_server, self.tmp_path = db_server, tmp_path
        self.kwargs = dict(host=host, port=port, user=user, password=password,
                           database=f"nexus_migrate_{uuid.uuid4().hex[:8]}")
        self.number = number

    def upgrade(self, below: int | None = None) -> list[str]:
        """Apply the pending migrations (only those numbered below ``below`` when given);
        returns the names applied."""
        sql_dir = None if below is None else migrations_before(self.tmp_path / f"below_{below}", below)
        return asyncio.run(apply_migrations(**self.kwargs, sql_dir=sql_dir))

    def __enter__(self) -> "EarlierSchema":
        self.applied = asyncio.run(apply_migrations(**self.kwargs,
                                                    sql_dir=migrations_before(self.tmp_path, self.number)))
        try:
            self.conn = pymysql.connect(**self.kwargs, autocommit=True, init_command="SET time_zone = '+00:00'",
                                        charset="utf8mb4")
        except BaseException:
            drop_database(self.db_server, self.kwargs["database"])
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()
        drop_database(self.db_server, self.kwargs["database"])


def seed_users_and_conversation(cur, t0, count: int = 12) -> tuple[list[str], str]:
    """For the migration tests: ``count`` users (ids sorted) and a conversation of the first
    two, written straight into the schema at ``t0``. Returns (user ids, conversation id)."""
    users = sorted(str(uuid.uuid4()) for _ in range(count))
    for uid in users:
        cur.execute("INSERT INTO users (id, username, full_name, email, password_hash, created_at,"
                    " updated_at) VALUES (%s, %s, 'U', %s, 'x', %s, %s)",
                    (uid, f"u_{uid[:12]}", f"{uid}@example.test", t0, t0))
    low, high = users[0], users[1]
    conv = str(uuid.uuid4())
    cur.execute("INSERT INTO conversations (id, creator_id, recipient_id, user_low_id, user_high_id,"
                " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (conv, low, high, low, high, t0, t0))
    return users, conv
