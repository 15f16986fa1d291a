"""Socket.replay (connection-state recovery): what a recovering socket missed goes out right
after the CONNECT answer, before anything emitted to it since it joined its rooms, which keeps
their order. The replay ends where the live events begin (the chat layer reads it up to what
the process had delivered when the socket joined: nexus_chat/offsets.py), so this layer sends
both as they are."""
from __future__ import annotations

import json

import pytest
from tornado.web import Application
from tornado.websocket import websocket_connect

from nexus_chat.realtime.rooms import InMemoryAdapter
from nexus_chat.realtime.server import Namespace, SocketServer

from .realtime_support import TIMEOUT, recv, serve


class Recovering(Namespace):
    async def on_connect(self, socket, auth):
        socket.join("user:u")
        server = socket.server
        # live while the socket recovers, before the replay is known
        server.emit("/chat", "message", {"n": 6}, "6", room="user:u")
        socket.emit("notice", "no offset")
        socket.replay([("message", [{"n": 4}, "4"]), ("message", [{"n": 5}, "5"])])


@pytest.fixture
def running(io_loop):
    server = SocketServer(ping_interval_ms=25000, ping_timeout_ms=20000, max_payload=1_000_000,
                          connect_timeout_ms=45000, allowed_origins=None, max_buffer_bytes=1_000_000,
                          adapter=InMemoryAdapter())
    server.add_namespace("/chat", Recovering())
    running = serve(Application(server.routes("/socket.io/")), server)
    yield running
    io_loop.run_sync(running.shutdown)


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_the_replay_goes_out_before_what_came_live_meanwhile(running):
    conn = await websocket_connect(f"{running.ws}/socket.io/?EIO=4&transport=websocket")
    assert (await recv(conn)).startswith("0")
    await conn.write_message("40/chat,{}")
    assert (await recv(conn)).startswith("40/chat,")
    received = [json.loads((await recv(conn))[len("42/chat,"):]) for _ in range(4)]
    assert received == [["message", {"n": 4}, "4"], ["message", {"n": 5}, "5"],
                        ["message", {"n": 6}, "6"], ["notice", "no offset"]]
    conn.close()
