"""The systems under test: a database (a fresh schema on 127.0.0.1:3306, or a private
MariaDB), the Nexus Chat server (`nexus-chat serve` with bench settings) and the ceiling server.
Every start waits with a deadline; every stop is SIGTERM, then SIGKILL after a grace period."""
from __future__ import annotations

import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from nexus_chat.embedded_db import free_port, port_answers

from .common import cpu_seconds, pids_named

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def _raise_nofile_preexec() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class BenchDatabase:
    """A database for one run: a new schema on the local MariaDB at 127.0.0.1:3306 (dropped at
    the end), or a private MariaDB (nexus_chat.embedded_db.PrivateMariaDB) when 3306 is silent."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.name = f"nexus_bench_{secrets.token_hex(4)}"
        self.private = None
        self.host, self.port, self.user, self.password = "127.0.0.1", 3306, "root", ""

    def start(self) -> "BenchDatabase":
        if not port_answers("127.0.0.1", 3306):
            from nexus_chat.embedded_db import PrivateMariaDB
            self.private = PrivateMariaDB(self.workdir / "mariadb")
            self.private.start()
            self.host, self.port = self.private.host, self.private.port
        return self

    @property
    def kind(self) -> str:
        return "private MariaDB" if self.private else "MariaDB on 127.0.0.1:3306"

    def pids(self) -> list[int]:
        if self.private is not None and self.private._process is not None:
            return [self.private._process.pid]
        return pids_named("mariadbd", "mysqld")

    def version(self) -> str:
        try:
            import pymysql
            conn = pymysql.connect(host=self.host, port=self.port, user=self.user,
                                   password=self.password, connect_timeout=5)
            with conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                (v,) = cur.fetchone()
            conn.close()
            return v
        except Exception as exc:  # noqa: BLE001
            return f"unknown ({exc})"

    def env(self) -> dict[str, str]:
        return {"DB_HOST": self.host, "DB_PORT": str(self.port), "DB_USERNAME": self.user,
                "DB_PASSWORD": self.password, "DB_NAME": self.name}

    def stop(self) -> None:
        if self.private is not None:
            self.private.stop()
            return
        try:
            import pymysql
            conn = pymysql.connect(host=self.host, port=self.port, user=self.user,
                                   password=self.password, connect_timeout=5)
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
            conn.close()
        except Exception as exc:  # noqa: BLE001
            print(f"bench: could not drop database {self.name}: {exc}", file=sys.stderr)


class ServerProcess:
    """A server child process on a free loopback port, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, logdir: Path,
                 cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.log_path = logdir / f"{name}.log"
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, timeout_s: float = 60.0) -> "ServerProcess":
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=_raise_nofile_preexec)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}:\n"
                                   + self.tail())
            try:
                with urllib.request.urlopen(self.url + "/api/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except Exception:  # noqa: BLE001 - not up yet
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} not healthy after {timeout_s} s; see {self.log_path}")
            time.sleep(0.1)

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def cpu(self) -> float | None:
        return cpu_seconds(self.pid)

    def stop(self, grace_s: float = 20.0) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        self.proc = proc  # keep pid readable
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.log.close()
        return proc.returncode


def nexus_server(name: str, db: BenchDatabase, var_dir: Path, logdir: Path, *, bcrypt_rounds: int = 4,
                 ping_interval_ms: int | None = None, extra_env: dict | None = None) -> ServerProcess:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEXUS_", "DB_", "JWT_", "MAIL_"))}
    env.update(db.env())
    env.update({
        "PORT": str(port),
        "APP_URL": f"http://127.0.0.1:{port}",
        "NEXUS_CONFIG": str(var_dir / "no-config.toml"),   # absent on purpose: defaults + env only
        "NEXUS_VAR_DIR": str(var_dir),
        "NEXUS_PUBLIC_DIR": str(var_dir / "public"),
        "NEXUS_RATE_LIMITS": "off",
        "NEXUS_BCRYPT_ROUNDS": str(bcrypt_rounds),
        "NEXUS_MAIL_BACKEND": "file",
        "NEXUS_MAIL_POLL_S": "1",
        "NEXUS_SHUTDOWN_GRACE_S": "5",
    })
    if ping_interval_ms is not None:
        env["NEXUS_PING_INTERVAL_MS"] = str(ping_interval_ms)
    env.update(extra_env or {})
    (var_dir / "public").mkdir(parents=True, exist_ok=True)
    # BENCH_NEXUS_CMD: another command line for the server (experiments, e.g. a patched copy)
    argv = os.environ.get("BENCH_NEXUS_CMD", "").split() or [str(VENV_BIN / "nexus-chat"), "serve"]
    return ServerProcess(name, argv, env, port, logdir, cwd=var_dir)


def ceiling_server(logdir: Path, workdir: Path, ping_interval_ms: int = 25000) -> ServerProcess:
    port = free_port()
    argv = [sys.executable, str(Path(__file__).resolve().parent / "ceiling_server.py"),
            "--port", str(port), "--ping-interval-ms", str(ping_interval_ms)]
    return ServerProcess(f"ceiling-{ping_interval_ms}", argv, dict(os.environ), port, logdir, cwd=workdir)


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="nexus-bench-"))
