"""A minimal Socket.IO v5 / Engine.IO v4 load client speaking the framing directly over a
WebSocket (docs/realtime.md): open packet, `40/chat,{"token":…}` CONNECT, events with ack ids,
answering server pings `2` with `3`. No reconnection, no polling, no binary: it only has to be
cheap, so that the generator is not the bottleneck.

Two WebSocket libraries are supported (``backend``: "aiohttp" or "websockets"); the default
is the one measured faster on the benchmark box (see bench/README.md).
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable

import orjson

NS = "/chat"
CONNECT_OK = "40/chat,"
CONNECT_ERR = "44/chat,"
ACK = "43/chat,"
EVENT = "42/chat,"
MESSAGE_EVENT = '42/chat,["message",'

DEFAULT_BACKEND = "aiohttp"


class ConnectFailed(Exception):
    pass


class SioClient:
    """One connection to the /chat namespace.

    ``on_message(payload_str)`` gets the JSON text of every `message` event's Message (not
    decoded: callers decode only what they need; without the offset that follows it when the
    server has recovery on); ``on_ack(ack_id, body_str)`` gets each ack.
    """

    __slots__ = ("ws", "backend", "on_message", "on_ack", "on_other", "pings", "closed", "reader",
                 "next_ack", "futures", "sid", "pid", "connected_at", "close_reason", "_send")

    def __init__(self, backend: str = DEFAULT_BACKEND) -> None:
        self.backend = backend
        self.ws = None
        self.on_message: Callable[[str], None] | None = None
        self.on_ack: Callable[[int, str], None] | None = None
        self.on_other: Callable[[str], None] | None = None
        self.pings = 0
        self.closed = False
        self.close_reason = ""
        self.reader: asyncio.Task | None = None
        self.next_ack = 0
        self.futures: dict[int, asyncio.Future] = {}
        self.sid = None
        self.pid = None        # connection-state recovery: the private id of the session
        self.connected_at = 0.0

    async def connect(self, base_url: str, token: str, session=None, timeout: float = 30.0,
                      auth: dict | None = None) -> None:
        """``auth``: the whole CONNECT payload instead of ``{"token": token}`` (e.g. with the
        ``pid`` and ``offset`` of a session to recover)."""
        url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        async with asyncio.timeout(timeout):
            if self.backend == "aiohttp":
                self.ws = await session.ws_connect(url, autoping=False, autoclose=False,
                                                   max_msg_size=0, compress=0, heartbeat=None)
                self._send = self.ws.send_str
                first = await self._recv_aiohttp()
            else:
                import websockets
                self.ws = await websockets.connect(url, compression=None, max_size=None,
                                                   ping_interval=None, ping_timeout=None,
                                                   open_timeout=timeout, close_timeout=1,
                                                   max_queue=None)
                self._send = self.ws.send
                first = await self.ws.recv()
            if not isinstance(first, str) or not first.startswith("0{"):
                raise ConnectFailed(f"bad open packet {first!r:.80}")
            if auth is None:
                await self._send('40/chat,{"token":"' + token + '"}')
            else:
                await self._send("40/chat," + orjson.dumps(auth).decode())
            while True:
                reply = await (self._recv_aiohttp() if self.backend == "aiohttp" else self.ws.recv())
                if reply == "2":
                    self.pings += 1
                    await self._send("3")
                    continue
                if reply.startswith(CONNECT_OK):
                    answer = orjson.loads(reply[len(CONNECT_OK):])
                    self.sid, self.pid = answer.get("sid"), answer.get("pid")
                    break
                if reply.startswith(CONNECT_ERR):
                    raise ConnectFailed(reply)
                # anything else before the CONNECT reply is unexpected but harmless
        self.connected_at = time.monotonic()
        self.reader = asyncio.create_task(self._read_loop())

    async def _recv_aiohttp(self):
        import aiohttp
        msg = await self.ws.receive()
        if msg.type == aiohttp.WSMsgType.TEXT:
            return msg.data
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                        aiohttp.WSMsgType.ERROR):
            raise ConnectionError(f"websocket closed ({msg.type.name})")
        return msg.data

    async def _read_loop(self) -> None:
        try:
            if self.backend == "aiohttp":
                import aiohttp
                TEXT = aiohttp.WSMsgType.TEXT
                receive = self.ws.receive
                while True:
                    msg = await receive()
                    if msg.type is not TEXT:
                        self.close_reason = msg.type.name
                        break
                    self._dispatch(msg.data)
            else:
                async for data in self.ws:
                    if isinstance(data, str):
                        self._dispatch(data)
                self.close_reason = "closed"
        except asyncio.CancelledError:
            self.close_reason = "cancelled"
            raise
        except Exception as exc:  # connection reset and the like
            self.close_reason = repr(exc)
        finally:
            self.closed = True
            for fut in self.futures.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("closed"))
            self.futures.clear()

    def _dispatch(self, data: str) -> None:
        if data.startswith(MESSAGE_EVENT):
            if self.on_message is not None:
                payload = data[len(MESSAGE_EVENT):-1]
                if payload[-1] == '"':     # recovery on: the offset, a string, comes last
                    payload = payload[:payload.rindex(',"')]
                self.on_message(payload)
        elif data.startswith(ACK):
            i = len(ACK)
            j = i
            while data[j].isdigit():
                j += 1
            ack_id = int(data[i:j])
            fut = self.futures.pop(ack_id, None)
            if fut is not None:
                if not fut.done():
                    fut.set_result(data[j:])
            elif self.on_ack is not None:
                self.on_ack(ack_id, data[j:])
        elif data == "2":
            self.pings += 1
            asyncio.ensure_future(self._send("3"))
        elif self.on_other is not None:
            self.on_other(data)

    async def emit(self, event: str, payload: dict) -> int:
        """Send an event asking for an ack; returns its ack id (answered via ``on_ack``).
        Awaited inline by the caller's send loop: no task per message."""
        ack_id = self.next_ack
        self.next_ack += 1
        await self._send(EVENT + str(ack_id) + orjson.dumps([event, payload]).decode())
        return ack_id

    async def call(self, event: str, payload: dict, timeout: float = 10.0):
        """Emit and wait for the ack; returns the decoded ack arguments."""
        ack_id = self.next_ack
        self.next_ack += 1
        fut = asyncio.get_running_loop().create_future()
        self.futures[ack_id] = fut
        await self._send(EVENT + str(ack_id) + orjson.dumps([event, payload]).decode())
        async with asyncio.timeout(timeout):
            return orjson.loads(await fut)

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        try:
            if self.ws is not None:
                async with asyncio.timeout(2):
                    await self.ws.close()
        except Exception:
            pass
        self.closed = True
