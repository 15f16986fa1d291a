"""Schemathesis against the live server: every operation of /api/openapi.json, authenticated,
with every check (server errors, response schemas, documented statuses and content types,
negative and positive data, auth, unsupported methods, use after delete, ...).

The server is the real `nexus-chat serve` process on its own database with a real SMTP sink;
the test registers and verifies a user through the mail, and schemathesis logs in as that user
(and logs in again when a test case has logged the session out). The run is bounded for CI;
NEXUS_SCHEMATHESIS_EXAMPLES raises the examples per operation for a longer run on demand;
CI uses a fixed seed, NEXUS_SCHEMATHESIS_SEED=random explores (the output names the seed).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from nexus_chat.embedded_db import free_port, port_answers

from .support import clean_env, db_env, drop_database, link_in, new_identity

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
REPO = Path(__file__).resolve().parents[2]
SERVE = Path(sys.executable).with_name("nexus-chat")
EXAMPLES = int(os.environ.get("NEXUS_SCHEMATHESIS_EXAMPLES", "25"))
# CI replays one seed (a green run stays green until the API or its document changes);
# NEXUS_SCHEMATHESIS_SEED=random explores, another number replays that run.
SEED = os.environ.get("NEXUS_SCHEMATHESIS_SEED", "20261130")

ACCEPTED_OR_400 = '["2xx", "3xx", "400", "401", "403", "404", "409", "429"]'
ACCEPTED_OR_400_415 = '["2xx", "3xx", "400", "401", "403", "404", "409", "415", "429"]'
# What would mean a bug the server hides (a 5xx is also caught by schemathesis' own check).
LOG_PROBLEMS = re.compile(r"Traceback|unhandled error|level=error|status=5\d\d")


@pytest.fixture
def live_server(tmp_path, db_server, mail_sink):
    """`nexus-chat serve` on a free port and a database of its own, dropped afterwards."""
    port = free_port()
    name = f"nexus_st_{uuid.uuid4().hex[:10]}"
    (tmp_path / "public").mkdir()
    log_path = tmp_path / "server.log"
    env = clean_env(tmp_path, PORT=str(port), NEXUS_BCRYPT_ROUNDS="4", NEXUS_RATE_LIMITS="off",
                    NEXUS_PUBLIC_DIR=str(tmp_path / "public"), NEXUS_MAIL_BACKEND="smtp",
                    MAIL_HOST="127.0.0.1", MAIL_PORT=str(mail_sink.port), NEXUS_MAIL_POLL_S="1",
                    **db_env(db_server, name))
    with open(log_path, "w") as log:
        server = subprocess.Popen([str(SERVE), "serve"], cwd=tmp_path, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not port_answers("127.0.0.1", port, 0.2):
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", log_path
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        drop_database(db_server, name)


def verified_user(base_url: str, mail_sink) -> dict[str, str]:
    """Register, follow the link of the real verification mail; the credentials of the user."""
    identity = new_identity("st")
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = client.post("/api/auth/register", json=identity)
        assert response.status_code == 201, response.text
        deadline = time.monotonic() + 15
        while not mail_sink.messages_to(identity["email"]):
            assert time.monotonic() < deadline, "no verification mail"
            time.sleep(0.05)
        link = httpx.URL(link_in(mail_sink.messages_to(identity["email"])[0]))
        verified = client.get(link.raw_path.decode())
        assert verified.status_code == 302 and verified.headers["Location"].endswith("status=success")
        login = client.post("/api/auth/login", json={"email": identity["email"],
                                                      "password": identity["password"]})
        assert login.status_code == 200, login.text
    return identity


def config_file(path: Path, base_url: str, user: dict[str, str]) -> Path:
    """schemathesis.toml: where the API is, and how to get (and renew) a bearer token."""
    path.write_text(f"""\
base-url = "{base_url}"

[auth]
auto-signup = false

[auth.dynamic.openapi.bearerAuth]
path = "/api/auth/login"
payload = {{ email = "{user['email']}", password = "{user['password']}" }}
extract_selector = "/data/accessToken"
retry_on = [401]

# positive_data_acceptance expects a schema-valid request to succeed (or 401/403/404/409). These
# operations rightly answer 400 to some schema-valid requests, for rules no JSON Schema states:
[[operations]]
# an uploaded file's bytes are checked: an avatar, icon or story must really be a JPEG/PNG/WEBP
# image (or MP4/MOV/MKV video), 400 otherwise; an attachment of a type not allowed is a 415
include-path = ["/api/story", "/api/users/profile", "/api/groups", "/api/groups/{{groupId}}",
                "/api/chat/attachments"]
include-method = ["POST", "PATCH"]
checks.positive_data_acceptance.expected-statuses = {ACCEPTED_OR_400_415}

[[operations]]
# the current password is checked, and a wrong one is a 400 (docs/api.md#auth); passwords are
# limited to 72 bytes of UTF-8, which JSON Schema cannot count (stated as `x-maxBytes`)
include-path = ["/api/auth/register", "/api/auth/change-password", "/api/auth/reset-password",
                "/api/auth/delete-account"]
checks.positive_data_acceptance.expected-statuses = {ACCEPTED_OR_400}

[[operations]]
# a `before` cursor must name a message (of that conversation), and an inbox `cursor` must be one
# the server gave: another value is a 400
include-path = ["/api/chat/messages", "/api/chat/search", "/api/chat/conversations"]
checks.positive_data_acceptance.expected-statuses = {ACCEPTED_OR_400}

[[operations]]
# a reaction is one emoji (one pictographic grapheme cluster: no JSON Schema pattern can say it)
# or a :shortcode:, as the parameter's description says
include-path = ["/api/chat/messages/{{messageId}}/reactions/{{emoji}}"]
checks.positive_data_acceptance.expected-statuses = {ACCEPTED_OR_400}
""")
    return path


def test_every_operation_passes_every_check(live_server, mail_sink, tmp_path):
    base_url, log_path = live_server
    user = verified_user(base_url, mail_sink)
    config = config_file(tmp_path / "schemathesis.toml", base_url, user)
    report = tmp_path / "report"
    command = [str(SCHEMATHESIS), "--no-color", "--config-file", str(config), "run",
               f"{base_url}/api/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES),
               "--workers", "1", "--request-timeout", "30", "--report", "junit",
               "--report-dir", str(report), "--warnings", "off"]
    if SEED != "random":
        command += ["--seed", SEED]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
           "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60 * max(10, EXAMPLES), env=env)
    output = result.stdout + result.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    assert result.returncode == 0, output[-60000:]
    assert "No issues found" in output, output[-5000:]
    server_log = log_path.read_text()
    problems = [line for line in server_log.splitlines() if LOG_PROBLEMS.search(line)]
    assert not problems, "the server logged errors:\n" + "\n".join(problems[:50])
