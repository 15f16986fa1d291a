"""Helpers of the chat tests: a recording python-socketio client and group set-up through
the real REST routes. No mocks: everything goes over real sockets to the live server."""
from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import socketio

from .support import Api, User

# the official socket.io-client (npm: package.json, package-lock.json) and its scripts
JS_DIR = Path(__file__).resolve().parents[1] / "js"
NO_PRESENCE = ("userStatusChanged",)
TRANSPORTS = {"polling+upgrade": ["polling", "websocket"], "websocket": ["websocket"]}
QUIET_S = 0.3   # how long "nothing else arrives" is watched


class ChatClient:
    """A socket.io client on `/chat` that records every event it receives, in order."""

    def __init__(self, base_url: str, user: User | None, transports: list[str] | None = None,
                 auth: Any = "default", headers: dict[str, str] | None = None,
                 ignore: tuple[str, ...] = (), local_address: str | None = None,
                 reconnection: bool = False) -> None:
        """``local_address``: connect from that address (127.0.0.x), so that nginx, sticky by
        client address, sees another client; ``reconnection``: python-socketio reconnects."""
        self.base_url = base_url
        self.user = user
        self.transports = transports or ["polling", "websocket"]
        self.auth = {"token": user.access} if auth == "default" else auth
        self.headers = headers or {}
        self.ignore = set(ignore)    # events not recorded (e.g. presence, in tests about messages)
        self._session = None
        if local_address is not None:
            import aiohttp
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(local_addr=(local_address, 0)))
        self.sio = socketio.AsyncClient(reconnection=reconnection, http_session=self._session,
                                        reconnection_delay=0.2, reconnection_delay_max=1)
        self.connected_times = 0
        self.events: list[tuple[str, Any]] = []
        self.connect_errors: list[Any] = []
        self.disconnected = asyncio.Event()
        self._changed = asyncio.Event()
        self.sio.on("*", self._record, namespace="/chat")
        self.sio.on("connect_error", self._connect_error, namespace="/chat")
        self.sio.on("disconnect", self._disconnect, namespace="/chat")
        self.sio.on("connect", self._connected, namespace="/chat")

    async def _record(self, event: str, *args: Any) -> None:
        if event in self.ignore:
            return
        self.events.append((event, args[0] if len(args) == 1 else list(args)))
        self._changed.set()

    async def _connect_error(self, data: Any = None) -> None:
        self.connect_errors.append(data)
        self._changed.set()

    async def _disconnect(self, *args: Any) -> None:
        self.disconnected.set()

    async def _connected(self, *args: Any) -> None:
        self.connected_times += 1
        self._changed.set()

    async def connect(self) -> "ChatClient":
        await self.sio.connect(self.base_url, namespaces=["/chat"], auth=self.auth,
                               transports=self.transports, headers=self.headers, wait_timeout=5)
        if self.transports[0] == "polling" and "websocket" in self.transports:
            await self.wait_until(lambda: self.sio.transport() == "websocket", what="upgrade")
        return self

    @property
    def transport(self) -> str:
        return self.sio.transport()

    async def call(self, event: str, data: Any = None, timeout: float = 5) -> Any:
        return await self.sio.call(event, data, namespace="/chat", timeout=timeout)

    async def emit(self, event: str, data: Any = None) -> None:
        await self.sio.emit(event, data, namespace="/chat")

    async def send(self, content: str, **target: Any) -> dict:
        ack = await self.call("sendMessage", {"content": content, **target})
        assert isinstance(ack, dict) and ack.get("id"), ack
        return ack

    def of(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def wait_until(self, check: Callable[[], bool], timeout: float = 5, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or check}; events: {self.events}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 0.05)
            except asyncio.TimeoutError:
                pass

    async def wait_for(self, event: str, count: int = 1, timeout: float = 5) -> list[Any]:
        await self.wait_until(lambda: len(self.of(event)) >= count, timeout, f"{count} × {event}")
        return self.of(event)

    async def expect(self, event: str, count: int = 1, timeout: float = 5) -> list[Any]:
        """Wait for `count` × `event`; assert nothing else arrived meanwhile; take them."""
        await self.wait_for(event, count, timeout)
        events = self.take()
        assert [name for name, _ in events] == [event] * count, events
        return [data for _, data in events]

    def take(self) -> list[tuple[str, Any]]:
        """Everything received so far (and forget it)."""
        events, self.events = self.events, []
        return events

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        else:
            await self.sio.shutdown()   # stops a reconnection in progress, if any
        if self._session is not None:
            await self._session.close()


async def quiet(*clients: ChatClient, seconds: float = QUIET_S) -> None:
    """Wait a little, then assert that none of the clients received anything more."""
    await asyncio.sleep(seconds)
    for client in clients:
        assert client.events == [], f"unexpected events for {client.user.username}: {client.events}"


def without(events: list[tuple[str, Any]], *names: str) -> list[tuple[str, Any]]:
    return [(n, d) for n, d in events if n not in names]


async def make_group(api: Api, owner: User, members: list[User], name: str | None = None) -> str:
    created = await api.post("/api/groups", json={"name": name or f"group {uuid.uuid4().hex[:6]}"},
                             token=owner.access)
    assert created.status == 201, created.body
    group_id = created.data["id"]
    if members:
        invited = await api.post("/api/groups/invite", token=owner.access,
                                 json={"groupId": group_id, "memberIds": [m.id for m in members]})
        assert invited.status == 201, invited.body
    return group_id
