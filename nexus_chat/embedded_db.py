"""A private MariaDB server for the quick start and the tests (no system service needed), and
a private Redis server for the scale-out tests and bench runs.

The recipe: install-db into an absolute datadir, start mariadbd with --no-defaults on a free
loopback port, poll until it answers, SIGTERM to stop.
"""
from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

INSTALL_HINT = ("no MariaDB found: install one with `sudo apt-get install -y mariadb-server` "
                "(or set DB_HOST to an existing MariaDB/MySQL server)")


class EmbeddedDatabaseError(RuntimeError):
    pass


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/usr/bin"):
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    return None


class PrivateMariaDB:
    """mariadbd on 127.0.0.1:<port> with its data in ``base_dir/data``."""

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.user = "root"
        self.password = ""
        self._process: subprocess.Popen | None = None

    @property
    def datadir(self) -> Path:
        return self.base_dir / "data"

    def start(self, timeout_s: float = 30.0) -> None:
        mariadbd = _binary("mariadbd") or _binary("mysqld")
        install_db = _binary("mariadb-install-db") or _binary("mysql_install_db")
        if not mariadbd or not install_db:
            raise EmbeddedDatabaseError(INSTALL_HINT)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        user = getpass.getuser()
        if not (self.datadir / "mysql").exists():
            subprocess.run(
                [install_db, "--no-defaults", f"--datadir={self.datadir}", f"--user={user}",
                 "--auth-root-authentication-method=normal", "--skip-test-db",
                 "--skip-name-resolve", "--innodb-log-file-size=16M"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        socket_path = self.base_dir / "mysqld.sock"
        log_path = self.base_dir / "error.log"
        self._process = subprocess.Popen(
            [mariadbd, "--no-defaults", f"--user={user}", f"--datadir={self.datadir}",
             f"--socket={socket_path}", f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--pid-file={self.base_dir / 'mysqld.pid'}", f"--log-error={log_path}",
             "--skip-name-resolve", "--character-set-server=utf8mb4",
             "--collation-server=utf8mb4_unicode_ci", "--innodb-log-file-size=16M",
             # Message search indexes two-letter words ("ok", "go", "uk"); the server's
             # default of 3 would make them unfindable.
             "--innodb-ft-min-token-size=2",
             "--max-connections=500"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)  # Ctrl-C in a terminal must not kill it before we stop it
        deadline = time.monotonic() + timeout_s
        while not port_answers(self.host, self.port, 0.2):
            if self._process.poll() is not None:
                raise EmbeddedDatabaseError(f"mariadbd exited; see {log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedDatabaseError(f"mariadbd did not answer in {timeout_s} s; see {log_path}")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> "PrivateMariaDB":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PrivateRedis:
    """A private redis-server (the tests' and the bench's scale-out runs): a free port,
    nothing saved to disk; it can be stopped and started again on the same port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    def start(self) -> "PrivateRedis":
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), "--daemonize", "no",
             "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_answers("127.0.0.1", self.port, 0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None
