"""`nexus-chat serve` in a child process with a database of its own, for tests that watch the
server from outside: that it stays alive, its resident memory, and what it logs."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from nexus_chat.embedded_db import free_port, port_answers

from .support import clean_env, db_env, drop_database

EXE = Path(sys.executable).with_name("nexus-chat")

# What must never appear in the log of a server under hostile input: a traceback, an error
# line, or a 5xx answer in the access log other than 503 (a cap or an outage, answered on purpose).
LOG_PROBLEMS = re.compile(r"Traceback|RecursionError|level=error|status=5(?!03)\d\d")


class ServerProcess:
    """``database``: share that database with other processes (it is left in place at the end)
    instead of one of its own; ``log_name``: several processes in one workdir log apart."""

    def __init__(self, workdir: Path, db_server, mail_port: int, *, database: str | None = None,
                 log_name: str = "server.log", **env: str) -> None:
        self.workdir = workdir
        self.db_server = db_server
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.own_database = database is None
        self.database = database or f"nexus_proc_{uuid.uuid4().hex[:10]}"
        (workdir / "public" / "uploads").mkdir(parents=True, exist_ok=True)
        settings = dict(PORT=str(self.port), NEXUS_BCRYPT_ROUNDS="4", NEXUS_VAR_DIR=str(workdir / "var"),
                        NEXUS_PUBLIC_DIR=str(workdir / "public"), NEXUS_MAIL_BACKEND="smtp",
                        MAIL_HOST="127.0.0.1", MAIL_PORT=str(mail_port), NEXUS_MAIL_POLL_S="1")
        settings.update(env)
        self.log_path = workdir / log_name
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen([str(EXE), "serve"], cwd=workdir,
                                        env=clean_env(workdir, **settings, **db_env(db_server, self.database)),
                                        stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while self.alive() and not port_answers("127.0.0.1", self.port, 0.2):
            assert time.monotonic() < deadline, "the server did not listen within 90 s"
            time.sleep(0.05)
        assert self.alive(), self.log_text()

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_bytes(self) -> int:
        """Resident memory of the server process now (Linux /proc)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) * 1024

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_problems(self) -> list[str]:
        return [line[:500] for line in self.log_text().splitlines() if LOG_PROBLEMS.search(line)]

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as when the process crashes or the machine dies."""
        if self.alive():
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        if self.own_database:
            drop_database(self.db_server, self.database)
