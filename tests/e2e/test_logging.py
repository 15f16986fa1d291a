"""Logging: structured lines (key=value or JSON) with request id, user, route, status and
duration; a rotated log file; and no secret in it after a whole auth flow."""
from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import re
import uuid
from pathlib import Path

import pytest

from nexus_chat.logs import setup_logging

from .support import link_in, register, token_of

KV_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]*)')
KV_LINE = re.compile(r'\w+=(?:"(?:[^"\\]|\\.)*"|[^\s"]*)(?: \w+=(?:"(?:[^"\\]|\\.)*"|[^\s"]*))*')
UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def parse_kv(line: str) -> dict[str, str]:
    assert KV_LINE.fullmatch(line), f"not a key=value line: {line!r}"
    out = {}
    for key, raw in KV_PAIR.findall(line):
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", lambda m: UNESCAPE.get(m.group(1), m.group(1)), raw[1:-1])
        out[key] = raw
    return out


@pytest.fixture
def log_file(tmp_path) -> Path:
    return tmp_path / "logs" / "nexus.log"


@pytest.fixture
def log_format() -> str:
    return "kv"


@pytest.fixture
def setting_overrides(log_file, log_format):
    return {"log_file": str(log_file), "log_level": "debug", "log_format": log_format}


@contextlib.contextmanager
def installed_logging(settings):
    """setup_logging(settings), then the root logger as it was."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    setup_logging(settings)
    ours = root.handlers[:]
    try:
        yield ours
    finally:
        for handler in ours:
            root.removeHandler(handler)
            handler.close()
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


@pytest.fixture
def configured_logging(settings):
    # The test's own SMTP server (aiosmtpd, logger "mail.log") logs whole mails at debug level;
    # it is not part of the application, so it stays out of the application's log file.
    sink_log = logging.getLogger("mail.log")
    saved = sink_log.level
    sink_log.setLevel(logging.WARNING)
    with installed_logging(settings) as handlers:
        yield handlers
    sink_log.setLevel(saved)


def read_log(handlers, path: Path) -> str:
    for handler in handlers:
        handler.flush()
    return path.read_text(encoding="utf-8")


def access_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line.get("logger") == "nexus_chat.access"]


@pytest.mark.gen_test(timeout=60)
async def test_full_auth_flow_leaves_no_secret_in_the_log_file(api, mail_sink, settings, log_file,
                                                             configured_logging):
    secrets: dict[str, str] = {}
    passwords = [f"Pw-{uuid.uuid4().hex}" for _ in range(4)]
    secrets.update({f"password{i}": p for i, p in enumerate(passwords)})

    identity, response = await register(api, password=passwords[0])
    assert response.status == 201
    email = identity["email"]
    verify_link = link_in(await mail_sink.wait_for(email))
    secrets["verify"] = token_of(verify_link)
    response = await api.get("/api/auth/verify-email", params={"token": secrets["verify"]})
    assert response.status == 302

    wrong = await api.post("/api/auth/login", json={"email": email, "password": passwords[3]})
    assert wrong.status == 401
    login = await api.post("/api/auth/login", json={"email": email, "password": passwords[0]})
    assert login.status == 200
    user_id = login.data["userId"]
    secrets["access1"], secrets["refresh1"] = login.data["accessToken"], login.data["refreshToken"]
    assert (await api.get("/api/auth/me", token=secrets["access1"])).status == 200

    refreshed = await api.post("/api/auth/refresh", json={"refreshToken": secrets["refresh1"], "userId": user_id})
    assert refreshed.status == 200
    secrets["access2"], secrets["refresh2"] = refreshed.data["accessToken"], refreshed.data["refreshToken"]
    # The rotated-out token again: treated as theft (logged as a warning, without the token).
    reuse = await api.post("/api/auth/refresh", json={"refreshToken": secrets["refresh1"]})
    assert reuse.status == 401

    login = await api.post("/api/auth/login", json={"email": email, "password": passwords[0]})
    secrets["access3"], secrets["refresh3"] = login.data["accessToken"], login.data["refreshToken"]
    changed = await api.post("/api/auth/change-password", token=secrets["access3"],
                             json={"oldPassword": passwords[0], "newPassword": passwords[1]})
    assert changed.status == 200, changed.body

    assert (await api.post("/api/auth/forgot-password", json={"email": email})).status == 200
    reset_link = link_in(await mail_sink.wait_for(email, count=2))
    secrets["reset"] = token_of(reset_link)
    reset = await api.post("/api/auth/reset-password", json={"token": secrets["reset"], "newPassword": passwords[2]})
    assert reset.status == 200, reset.body
    again = await api.post("/api/auth/reset-password", json={"token": secrets["reset"], "newPassword": passwords[3]})
    assert again.status == 401

    login = await api.post("/api/auth/login", json={"email": email, "password": passwords[2]})
    assert login.status == 200
    secrets["access4"], secrets["refresh4"] = login.data["accessToken"], login.data["refreshToken"]
    assert (await api.post("/api/auth/logout", token=secrets["access4"])).status == 200

    secrets.update({name: getattr(settings, name) for name in (
        "jwt_access_secret", "jwt_refresh_secret", "jwt_verify_email_secret", "jwt_reset_password_secret")})

    text = read_log(configured_logging, log_file)
    assert text.count("\n") > 10, "the log file was not written"
    for name, secret in secrets.items():
        assert secret not in text, f"{name} appears in the log file"
        if secret.count(".") == 2:   # a JWT: not even its signature
            assert secret.rsplit(".", 1)[1] not in text, f"the signature of {name} appears in the log file"
    assert "token=" not in text

    lines = [parse_kv(line) for line in text.splitlines() if line]
    requests = access_lines(lines)
    routes = {(line["method"], line["route"], line["status"]) for line in requests}
    for expected in [("POST", "/api/auth/register", "201"), ("GET", "/api/auth/verify-email", "302"),
                     ("POST", "/api/auth/login", "401"), ("POST", "/api/auth/refresh", "401"),
                     ("POST", "/api/auth/change-password", "200"), ("POST", "/api/auth/reset-password", "401")]:
        assert expected in routes, expected
    me = next(line for line in requests if line["route"] == "/api/auth/me")
    assert me["user_id"] == user_id
    assert me["path"] == "/api/auth/me" and float(me["ms"]) >= 0 and len(me["request_id"]) >= 16


@pytest.mark.parametrize("log_format", ["kv", "json"])
@pytest.mark.gen_test(timeout=30)
async def test_every_line_parses_in_both_formats(log_format, log_file, configured_logging, api, user_factory):
    user = await user_factory("lg")
    await api.get(f"/api/contacts/{uuid.uuid4()}", token=user.access, headers={"X-Request-Id": "trace-42"})
    await api.get("/api/nope?token=QueryStringSecret123")
    try:
        raise RuntimeError('boom with "quotes"\nand a second line')
    except RuntimeError:
        logging.getLogger("nexus_test.logging").exception("handled = %s", "yes")
    text = read_log(configured_logging, log_file)

    raw_lines = [line for line in text.splitlines() if line]
    if log_format == "json":
        lines = [{k: "-" if v is None else str(v) for k, v in json.loads(line).items()} for line in raw_lines]
    else:
        lines = [parse_kv(line) for line in raw_lines]
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    assert all(line["ts"].endswith("Z") for line in lines)
    contact = next(line for line in access_lines(lines) if line.get("request_id") == "trace-42")
    assert contact["route"] == "/api/contacts/{id}" and contact["status"] == "404"
    assert contact["user_id"] == user.id and contact["method"] == "GET"
    assert float(contact["ms"]) >= 0 and contact["ip"] == "127.0.0.1"
    unknown = next(line for line in access_lines(lines) if line["path"] == "/api/nope")
    assert unknown["route"] == "unmatched" and unknown["user_id"] == "-"
    assert "QueryStringSecret123" not in text
    failure = next(line for line in lines if line["logger"] == "nexus_test.logging")
    assert failure["msg"] == "handled = yes" and failure["level"] == "error"
    assert 'boom with "quotes"\nand a second line' in failure["exc"]


def test_level_and_daily_rotation_come_from_the_settings(tmp_path):
    from nexus_chat.config import load_settings
    path = tmp_path / "sub" / "app.log"
    settings = load_settings(environ={"NEXUS_CONFIG": str(tmp_path / "absent.toml"),
                                      "NEXUS_LOG_FILE": str(path), "NEXUS_LOG_LEVEL": "warning",
                                      "NEXUS_LOG_RETENTION_DAYS": "7", "NEXUS_LOG_FORMAT": "json"},
                             server_var_dir=str(tmp_path / "var"))
    with installed_logging(settings) as ours:
        rotating = [h for h in ours if isinstance(h, logging.handlers.TimedRotatingFileHandler)]
        assert len(rotating) == 1
        handler = rotating[0]
        assert handler.when == "MIDNIGHT" and handler.utc and handler.backupCount == 7
        logging.getLogger("nexus_chat.x").info("not at warning level")
        logging.getLogger("nexus_chat.x").warning("kept")
        handler.flush()
        written = [json.loads(line) for line in path.read_text().splitlines()]
        assert [line["msg"] for line in written] == ["kept"]
        # Retention: rotated files beyond backupCount are deleted at the next rollover.
        for day in range(1, 11):
            (path.parent / f"app.log.2026-01-{day:02d}").write_text("old\n")
        handler.doRollover()
        kept = sorted(p.name for p in path.parent.glob("app.log.*"))
        assert len(kept) == 7, kept
        assert "app.log.2026-01-01" not in kept
