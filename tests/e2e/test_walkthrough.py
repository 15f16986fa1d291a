"""The README's walk-through and the docs' examples work as written (issue 16).

`nexus-chat serve` runs as `bin/serve` would run it (development settings, file mail backend,
a database of its own), and every shell example of the document runs against it with curl,
in order (tests/e2e/walkthrough.py says how a reader's part is played). curl is pointed from
`localhost:3000`, the address the documents use, to the test's port by a `connect-to` line
in its configuration file, so the commands run exactly as written.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pymysql
import pytest

from nexus_chat.embedded_db import free_port, port_answers

from .support import clean_env, db_env, drop_database
from .walkthrough import run_document, steps_of, wait_until

ROOT = Path(__file__).resolve().parents[2]
EXE = Path(sys.executable).with_name("nexus-chat")

# What the README's walk-through must at least show (issue 16): the account's whole life and
# one example of each area. Dropping one from the README fails here, not silently.
README_ROUTES = {
    ("POST", "/api/auth/register"), ("GET", "/api/auth/verify-email"), ("POST", "/api/auth/login"),
    ("GET", "/api/auth/me"), ("POST", "/api/auth/refresh"), ("POST", "/api/auth/change-password"),
    ("POST", "/api/auth/forgot-password"), ("POST", "/api/auth/reset-password"),
    ("DELETE", "/api/auth/delete-account"),
    ("GET", "/api/users/search"), ("PATCH", "/api/users/profile"),
    ("POST", "/api/contacts"), ("GET", "/api/contacts"),
    ("POST", "/api/groups"), ("POST", "/api/groups/invite"),
    ("POST", "/api/story"), ("GET", "/api/story/feed"),
    ("GET", "/api/chat/messages"), ("GET", "/api/chat/recent-messages"),
}


class Server:
    """`nexus-chat serve` in a directory laid out like a fresh checkout's root."""

    def __init__(self, workdir: Path, db_server) -> None:
        self.workdir = workdir
        self.db_server = db_server
        self.port = free_port()
        self.database = f"nexus_walk_{uuid.uuid4().hex[:10]}"
        env = clean_env(workdir, PORT=str(self.port), NEXUS_BCRYPT_ROUNDS="4",
                        NEXUS_VAR_DIR="var", NEXUS_PUBLIC_DIR="public",
                        **db_env(db_server, self.database))
        self.log = (workdir / "server.log").open("w")
        self.process = subprocess.Popen([str(EXE), "serve"], cwd=workdir, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.process.poll() is not None or port_answers("127.0.0.1", self.port, 0.2),
                   90, "the server to listen")
        assert self.process.poll() is None, self.output()

    def output(self) -> str:
        self.log.flush()
        return (self.workdir / "server.log").read_text()

    def mail_settled(self) -> None:
        """Wait until every queued mail is delivered (written to var/mail/)."""
        host, port, user, password = self.db_server
        conn = pymysql.connect(host=host, port=port, user=user, password=password, database=self.database,
                               autocommit=True)
        try:
            def empty() -> bool:
                with conn.cursor() as cur:
                    cur.execute("SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL")
                    return cur.fetchone()[0] == 0
            wait_until(empty, 20, "the queued mail to be written")
        finally:
            conn.close()

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        output = self.output()
        self.log.close()
        drop_database(self.db_server, self.database)
        return output


@pytest.fixture
def curl_env(tmp_path):
    """curl exactly as a reader runs it, but `localhost:3000` reaches the test's server."""
    if not shutil.which("curl"):
        pytest.skip("curl is not installed (bin/test installs it)")
    home = tmp_path / "curl-home"
    home.mkdir()

    def make(port: int) -> dict[str, str]:
        (home / ".curlrc").write_text(f"connect-to = localhost:3000:127.0.0.1:{port}\n")
        # The reader's shell: in the checkout, with bin/serve's settings (var/ under it).
        return clean_env(tmp_path, CURL_HOME=str(home), HOME=str(home), NEXUS_VAR_DIR="var")
    return make


def walk(document: str, tmp_path: Path, db_server, curl_env):
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    (workdir / ".venv").symlink_to(Path(sys.prefix))   # bin/serve's virtualenv: .venv/bin/nexus-chat
    server = Server(workdir, db_server)
    try:
        session = run_document(ROOT / document, document, workdir, curl_env(server.port),
                               server.mail_settled, f"http://127.0.0.1:{server.port}")
    finally:
        output = server.stop()
    problems = [line for line in output.splitlines() if "level=error" in line or "Traceback" in line]
    assert not problems, "the server logged errors:\n" + "\n".join(problems)
    return session, workdir


def test_the_readme_walk_through_works_as_written(tmp_path, db_server, curl_env):
    session, workdir = walk("README.md", tmp_path, db_server, curl_env)
    missing = README_ROUTES - session.routes
    assert not missing, f"the README's walk-through no longer shows {sorted(missing)}"
    mails = sorted((workdir / "var" / "mail").glob("*.eml"))
    assert len(mails) == len(list((workdir / "var" / "mail").glob("*.txt"))) >= 3


# Every document of docs/ with examples (a new one joins by itself).
DOCS = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "docs").glob("*.md")
              if steps_of(path, path.name))


def test_the_contract_documents_have_examples():
    assert {"docs/api.md", "docs/realtime.md"} <= set(DOCS)


@pytest.mark.parametrize("document", DOCS)
def test_the_docs_examples_work_as_written(document, tmp_path, db_server, curl_env):
    session, _ = walk(document, tmp_path, db_server, curl_env)
    assert session.routes, f"{document}: no example reached the server"
