"""Several real `nexus-chat serve` processes on one database and one Redis
(realtime.adapter = redis), each a child process that can be stopped or killed (SIGKILL), and
a TCP proxy that stands in for the load balancer in front of them (it sends new connections
to the process it points at, as nginx does after an upstream dies)."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

from nexus_chat.embedded_db import free_port, port_answers

from .server_process import EXE
from .support import clean_env, db_env


JWT_SECRETS = ("JWT_ACCESS_TOKEN_SECRET", "JWT_REFRESH_TOKEN_SECRET", "JWT_VERIFY_EMAIL_SECRET",
               "JWT_FORGOT_PASSWORD_SECRET")


class ClusterProcess:
    def __init__(self, workdir: Path, db_server, database: str, mail_port: int, redis_url: str,
                 redis_key: str, **env: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "public" / "uploads").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.redis_key = redis_key
        settings = dict(PORT=str(self.port), NEXUS_BCRYPT_ROUNDS="4", NEXUS_VAR_DIR=str(workdir / "var"),
                        NEXUS_PUBLIC_DIR=str(workdir / "public"), NEXUS_MAIL_BACKEND="smtp",
                        MAIL_HOST="127.0.0.1", MAIL_PORT=str(mail_port), NEXUS_MAIL_POLL_S="1",
                        NEXUS_RATE_LIMITS="0", NEXUS_REALTIME_ADAPTER="redis", NEXUS_REDIS_URL=redis_url,
                        NEXUS_REDIS_KEY=redis_key, NEXUS_REDIS_PROCESS_TTL_S="3",
                        # The same secrets on every process (tokens of one are valid on all).
                        **{name: f"cluster-test-{name}-{'x' * 32}" for name in JWT_SECRETS})
        settings.update(env)
        self.log_path = workdir / "server.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen([str(EXE), "serve"], cwd=workdir,
                                        env=clean_env(workdir, **settings, **db_env(db_server, database)),
                                        stdout=self._log, stderr=subprocess.STDOUT)

    def wait_listening(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while self.alive() and not port_answers("127.0.0.1", self.port, 0.2):
            assert time.monotonic() < deadline, "the server did not listen in time"
            time.sleep(0.05)
        assert self.alive(), self.log_text()

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """A crash: no shutdown of any kind."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class TcpProxy:
    """Forwards each new connection to ``target`` (a port); while ``target`` is None, new
    connections are closed at once (no upstream left)."""

    def __init__(self, target: int | None) -> None:
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: asyncio.base_events.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> "TcpProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.target is None:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._open.update((writer, up_writer))

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                for end in (writer, up_writer):
                    end.close()
                    self._open.discard(end)

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut(self) -> None:
        """Closes every open connection (what a client sees when its process dies)."""
        for end in list(self._open):
            end.close()
        self._open.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
