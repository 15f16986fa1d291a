"""Helpers of the tests that run several `nexus-chat serve` processes (server_process.py) on one
database and one Redis: killing one (SIGKILL), and a TCP proxy that stands in for the load
balancer in front of them (it sends new connections to the process it points at, as nginx
does after an upstream dies)."""
from __future__ import annotations

import asyncio
import signal

from nexus_chat.embedded_db import free_port

from .server_process import ServerProcess


def kill(server: ServerProcess) -> None:
    """A crash: SIGKILL, no shutdown of any kind."""
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)


class TcpProxy:
    """Forwards each new connection to ``target`` (a port); while ``target`` is None, new
    connections are closed at once (no upstream left). ``lag_s``: what the upstream sends is
    held that long before it is passed on (a slow link to one process)."""

    def __init__(self, target: int | None) -> None:
        self.target = target
        self.lag_s = 0.0
        self.flowing = asyncio.Event()   # cleared by `stall`: bytes wait in the proxy
        self.flowing.set()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: asyncio.base_events.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._serving: set[asyncio.Task] = set()

    async def start(self) -> "TcpProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._serving.add(task)
        try:
            await self._forward(reader, writer)
        finally:
            self._serving.discard(task)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.target is None:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._open.update((writer, up_writer))

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, lagging: bool) -> None:
            try:
                while data := await source.read(65536):
                    if lagging and self.lag_s:
                        await asyncio.sleep(self.lag_s)
                    await self.flowing.wait()
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                for end in (writer, up_writer):
                    end.close()
                    self._open.discard(end)

        await asyncio.gather(pump(reader, up_writer, False), pump(up_reader, writer, True))

    def stall(self) -> None:
        """From now on what either side sends waits in the proxy (nothing is lost, nothing
        closed) until `flow`: a network that holds packets for a while."""
        self.flowing.clear()

    def flow(self) -> None:
        self.flowing.set()

    def cut(self) -> None:
        """Closes every open connection (what a client sees when its process dies)."""
        for end in list(self._open):
            end.close()
        self._open.clear()

    async def close(self) -> None:
        self.cut()
        for task in list(self._serving):
            task.cancel()
        await asyncio.gather(*self._serving, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
