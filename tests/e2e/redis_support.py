"""A private Redis server for the scale-out tests (like the private MariaDB of
nexus_chat/embedded_db.py): redis-server on a free port, nothing saved to disk, stopped at the
end. It can be stopped and started again on the same port (the restart tests).
$NEXUS_TEST_REDIS_URL points the tests at another server instead (no restart tests then)."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from nexus_chat.embedded_db import free_port, port_answers


class PrivateRedis:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
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


def private_redis_fixture():
    """A session fixture body: a PrivateRedis of the test module's own (None when
    $NEXUS_TEST_REDIS_URL names another server). Use: ``redis_server = pytest.fixture(
    scope="session")(private_redis_fixture)``."""
    import os
    import tempfile

    if os.environ.get("NEXUS_TEST_REDIS_URL"):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="nexus-test-redis-") as tmp:
        server = PrivateRedis(Path(tmp)).start()
        try:
            yield server
        finally:
            server.stop()
