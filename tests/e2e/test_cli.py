"""The `nexus-chat` command, run as a real subprocess: help, check-config, migrate."""
from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from nexus_chat.embedded_db import free_port

from .support import clean_env, db_env, drop_database

EXE = Path(sys.executable).with_name("nexus-chat")


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], cwd=tmp_path, env=clean_env(tmp_path, **env),
                          capture_output=True, text=True, timeout=120)


def test_help_lists_the_commands(tmp_path):
    result = run(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("serve", "migrate", "check-config"):
        assert command in result.stdout
    assert "Exit status" in result.stdout
    bare = run([], tmp_path)
    assert bare.returncode == 2 and "check-config" in bare.stdout


def test_a_bad_setting_is_one_line_naming_it(tmp_path):
    result = run(["check-config"], tmp_path, PORT="abc")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "PORT" in lines[0] and "server_port" in lines[0]
    assert result.stdout == ""


def test_an_unknown_setting_in_the_config_file_is_refused(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[server]\nprot = 3000\n")
    result = run(["check-config"], tmp_path, NEXUS_CONFIG=str(config))
    assert result.returncode == 2
    assert "server.prot" in result.stderr


def test_unreachable_database_is_a_failure(tmp_path):
    closed = free_port()
    result = run(["check-config"], tmp_path, DB_HOST="127.0.0.1", DB_PORT=str(closed))
    assert result.returncode != 0
    assert f"127.0.0.1:{closed}" in result.stdout
    assert "cannot connect" in result.stdout


def test_check_config_reports_settings_and_database(tmp_path, db_server, db_target):
    secret = "s3cret-" + uuid.uuid4().hex + uuid.uuid4().hex
    result = run(["check-config"], tmp_path, **db_env(db_server, db_target.name),
                 JWT_ACCESS_TOKEN_SECRET=secret, PORT="3456")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "server_port" in out and "3456" in out and "$PORT" in out
    assert "jwt_access_secret" in out and secret not in out      # secrets are masked
    assert "OK" in out and "migration(s) applied" in out
    assert db_target.name in out


def test_migrate_creates_and_is_idempotent(tmp_path, db_server):
    name = f"nexus_cli_{uuid.uuid4().hex[:10]}"
    env = db_env(db_server, name)
    try:
        first = run(["migrate"], tmp_path, **env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert first.stdout.startswith("applied ") and not first.stdout.startswith("applied 0")
        second = run(["migrate"], tmp_path, **env)
        assert second.returncode == 0
        assert second.stdout.strip() == "applied 0 migration(s)"
        check = run(["check-config"], tmp_path, **env)
        assert check.returncode == 0
    finally:
        drop_database(db_server, name)


def test_sigterm_finishes_in_flight_requests_then_exits(tmp_path, db_server):
    """Graceful shutdown: stop accepting, let a running request finish, close, exit 0."""
    import json
    import signal
    import threading
    import time
    import urllib.request

    from nexus_chat.embedded_db import port_answers

    port = free_port()
    name = f"nexus_cli_{uuid.uuid4().hex[:8]}"
    env = clean_env(tmp_path, PORT=str(port), NEXUS_BCRYPT_ROUNDS="13", NEXUS_RATE_LIMITS="off",
                    **db_env(db_server, name))
    server = subprocess.Popen([str(EXE), "serve"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not port_answers("127.0.0.1", port, 0.2):
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        answer: dict = {}

        def register() -> None:  # bcrypt cost 13 keeps this request busy for ~0.6 s
            body = json.dumps({"username": "graceful_1", "fullName": "G", "email": "g@example.test",
                               "password": "secret-pass-1"}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/auth/register", data=body,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as response:
                answer["status"] = response.status

        client = threading.Thread(target=register)
        client.start()
        time.sleep(0.2)                      # the request is in flight, hashing
        server.send_signal(signal.SIGTERM)
        client.join(30)
        assert answer.get("status") == 201, "the in-flight request was finished"
        assert server.wait(timeout=30) == 0
        assert not port_answers("127.0.0.1", port, 0.2)
        assert "shutting down" in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        drop_database(db_server, name)


def test_mail_shows_the_newest_mails_with_whole_links(tmp_path):
    import asyncio

    from nexus_chat.mail import FileBackend, build_message, render

    empty = run(["mail"], tmp_path)
    assert empty.returncode == 1 and "no mail in" in empty.stderr

    async def deliver() -> None:
        backend = FileBackend(tmp_path / "var" / "mail")
        for n, to in enumerate(["ada@example.com", "charles@example.com", "ada@example.com"]):
            link = f"http://localhost:3000/api/auth/verify-email?token=ey{'J' * 150}.{n}=="
            text, html = render("verify_email", subject="Verify", full_name="A", link=link, valid_for="1 day")
            await backend.deliver(build_message("Nexus Chat <noreply@nexus-chat.local>",
                                                {"recipient": to, "subject": f"Verify {n}",
                                                 "text_body": text, "html_body": html}))
    asyncio.run(deliver())
    links = run(["mail", "--links", "--to", "ADA@example.com"], tmp_path)
    assert links.returncode == 0, links.stderr
    assert links.stdout.splitlines() == [
        f"http://localhost:3000/api/auth/verify-email?token=ey{'J' * 150}.{n}==" for n in (0, 2)]
    last = run(["mail", "--last", "1"], tmp_path)
    assert last.returncode == 0
    lines = last.stdout.splitlines()
    assert len(lines) == 2 and "to ada@example.com" in lines[0] and "'Verify 2'" in lines[0]
    assert lines[1].strip().endswith(".2==")
    assert "mail" in run(["--help"], tmp_path).stdout
