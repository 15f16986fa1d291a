"""Fixtures of the end-to-end tier: a real database server and a database of this run's own
(dropped at the end), a real SMTP sink, the real server on a real port for each test, Socket.IO
chat clients connected to it (`chat`) and the official JavaScript client (`node_client`).

The database server is $NEXUS_TEST_DATABASE_URL (mysql://user:pass@host:port), else
127.0.0.1:3306 if it answers, else a private MariaDB started for the session.
pytest-tornado gives every test a new IOLoop, so the pool and the app are per test; only
loop-free things (the database server, the SMTP sink thread) live for the session.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pymysql
import pytest

from nexus_chat.config import load_settings
from nexus_chat.embedded_db import PrivateMariaDB, free_port, port_answers
from nexus_chat.migrate import apply_migrations
from nexus_chat.runtime import DatabaseTarget, Runtime

from ..tiers import mark_tier
from .chat_support import JS_DIR, ChatClient
from .recovery_support import RecoveringClient
from .support import Api, MailSink, User, drop_database, make_user


@pytest.fixture(scope="session")
def db_server():
    url = os.environ.get("NEXUS_TEST_DATABASE_URL")
    if url:
        parsed = urlparse(url)
        yield (parsed.hostname or "127.0.0.1", parsed.port or 3306,
               unquote(parsed.username or "root"), unquote(parsed.password or ""))
        return
    if port_answers("127.0.0.1", 3306):
        try:
            pymysql.connect(host="127.0.0.1", port=3306, user="root", password="").close()
            yield ("127.0.0.1", 3306, "root", "")
            return
        except pymysql.MySQLError:
            pass  # something answers but will not let us in: use a private server
    with tempfile.TemporaryDirectory(prefix="nexus-test-db-") as tmp:
        with PrivateMariaDB(Path(tmp)) as server:
            yield (server.host, server.port, server.user, server.password)


@pytest.fixture(scope="session")
def db_target(db_server):
    host, port, user, password = db_server
    name = f"nexus_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(apply_migrations(host=host, port=port, user=user, password=password, database=name))
    yield DatabaseTarget(host, port, user, password, name)
    drop_database(db_server, name)


@pytest.fixture(scope="session")
def mail_sink():
    sink = MailSink(free_port())
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def tmp_dirs(tmp_path):
    var, public = tmp_path / "var", tmp_path / "public"
    (public / "uploads").mkdir(parents=True)
    var.mkdir()
    return var, public


@pytest.fixture
def setting_overrides():
    """Tests override this fixture (or extend the dict) to change settings."""
    return {}


@pytest.fixture
def settings(tmp_dirs, mail_sink, setting_overrides):
    var, public = tmp_dirs
    values = dict(
        server_var_dir=str(var), server_public_dir=str(public),
        auth_bcrypt_rounds=4,            # bcrypt's minimum: tests measure behaviour, not hashing
        server_rate_limits=False,        # the rate-limit tests turn them on
        mail_backend="smtp", mail_host="127.0.0.1", mail_port=mail_sink.port, mail_poll_s=1,
        realtime_ping_interval_ms=25000, realtime_ping_timeout_ms=20000,
    )
    values.update(setting_overrides)
    return load_settings(environ={"NEXUS_CONFIG": str(var / "absent.toml")}, **values)


class _ServerErrors(logging.Handler):
    """Collects every 5xx answer and unhandled exception the server logs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def runtime(io_loop, settings, db_target):
    errors = _ServerErrors()
    logging.getLogger("nexus_chat").addHandler(errors)
    rt = io_loop.run_sync(lambda: Runtime.start(settings, db_target))
    port = free_port()
    rt.listen(port, "127.0.0.1")
    rt.base_url = f"http://127.0.0.1:{port}"
    rt.port = port
    yield rt
    io_loop.run_sync(rt.stop, timeout=30)
    logging.getLogger("nexus_chat").removeHandler(errors)
    problems = [f"{r.name}: {r.getMessage()} {getattr(r, 'fields', '')}" for r in errors.records]
    assert not problems, "the server logged errors (a 500 is a bug):\n" + "\n".join(problems)


@pytest.fixture
def api(runtime):
    client = Api(runtime.base_url)
    yield client
    client.close()


@pytest.fixture
def user_factory(api, mail_sink):
    async def create(prefix: str = "u", **overrides):
        return await make_user(api, mail_sink, prefix, **overrides)
    return create


@pytest.fixture
def chat(runtime, io_loop):
    """`await chat(user, transports=[...])` → a connected ChatClient, closed after the test."""
    clients: list[ChatClient] = []

    async def connect(user: User | None, transports: list[str] | None = None, *, wait: bool = True,
                      **kwargs: Any) -> ChatClient:
        client = ChatClient(runtime.base_url, user, transports, **kwargs)
        clients.append(client)
        return await client.connect() if wait else client

    yield connect

    async def close_all() -> None:
        for client in clients:
            await client.close()
    io_loop.run_sync(close_all, timeout=10)


@pytest.fixture
def recovering(node_client, runtime, io_loop):
    """`await recovering(user, delay_ms)` → the official JS client with reconnection on
    (tests/e2e/recovery_support.py), killed after the test."""
    clients: list[RecoveringClient] = []

    async def start(user: User, delay_ms: int | None = None) -> RecoveringClient:
        client = await RecoveringClient.start(node_client, runtime.base_url, user.access, delay_ms)
        clients.append(client)
        return client
    yield start

    async def close_all() -> None:
        for client in clients:
            await client.close()
    io_loop.run_sync(close_all, timeout=10)


@pytest.fixture(scope="session")
def node_client():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed to run the official socket.io-client (not installed)")
    installed = JS_DIR / "node_modules" / ".package-lock.json"
    if installed.is_file() and installed.stat().st_mtime >= (JS_DIR / "package-lock.json").stat().st_mtime:
        return node   # already installed from this lock file (bin/test runs `npm ci`)
    try:
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=JS_DIR,
                              capture_output=True, text=True, timeout=300)
        failure = None if done.returncode == 0 else (done.stderr or done.stdout)[-800:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        failure = str(exc)
    if failure and not (JS_DIR / "node_modules" / "socket.io-client").is_dir():
        pytest.skip(f"`npm install` in tests/js failed: {failure}")
    return node


def pytest_collection_modifyitems(items):
    mark_tier(items, "e2e")
