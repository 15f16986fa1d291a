"""Two Nexus processes sharing rooms through a real Redis (realtime.adapter = redis): users on
different processes chat 1-on-1 and in groups, group membership changes reach the sockets of
the other process, a Redis restart is survived, and the official Node `@socket.io/redis-emitter`
reaches our clients (wire compatibility with @socket.io/redis-adapter)."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from nexus_chat.embedded_db import free_port
from nexus_chat.runtime import Runtime

from .chat_support import NO_PRESENCE, ChatClient, make_group
from .redis_support import private_redis_fixture
from .support import Api

JS_DIR = Path(__file__).resolve().parent.parent / "js"


redis_server = pytest.fixture(scope="session")(private_redis_fixture)


@pytest.fixture
def redis_url(redis_server):
    return os.environ.get("NEXUS_TEST_REDIS_URL") or redis_server.url


@pytest.fixture
def setting_overrides(redis_url):
    # Each test its own channels: nothing of another test (or run) reaches its processes.
    return {"realtime_adapter": "redis", "redis_url": redis_url,
            "redis_key": f"nexus-test-{uuid.uuid4().hex[:10]}"}


@pytest.fixture
def second(io_loop, settings, db_target):
    """Process B: a second runtime on the same database and Redis (the `runtime` fixture is A)."""
    rt = io_loop.run_sync(lambda: Runtime.start(settings, db_target))
    port = free_port()
    rt.listen(port, "127.0.0.1")
    rt.base_url = f"http://127.0.0.1:{port}"
    yield rt
    io_loop.run_sync(rt.stop, timeout=30)


@pytest.fixture
def clients(io_loop):
    opened: list[ChatClient] = []

    async def connect(process, user) -> ChatClient:
        client = ChatClient(process.base_url, user, ["websocket"], ignore=NO_PRESENCE)
        opened.append(client)
        return await client.connect()

    yield connect

    async def close_all() -> None:
        for client in opened:
            await client.close()
    io_loop.run_sync(close_all, timeout=10)


def messages(client: ChatClient) -> list[str]:
    return [data["content"] for data in client.of("message")]


@pytest.mark.gen_test(timeout=60)
async def test_users_on_two_processes_chat_one_on_one_and_in_a_group(api, user_factory, runtime,
                                                                      second, clients):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    group_id = await make_group(api, a, [b, c])
    ca = await clients(runtime, a)
    cb, cc = await clients(second, b), await clients(second, c)

    sent = await ca.send("from A to B", recipientId=b.id)
    await cb.wait_for("message")
    assert cb.of("message") == [sent]            # the same message object, across processes
    await cb.send("from B to A", recipientId=a.id)
    await ca.wait_for("message")
    assert messages(ca) == ["from B to A"]       # the sending socket has its ack, not an echo

    # a group message reaches every member (its sender too), on both processes, once each
    await ca.send("hello group", groupId=group_id)
    await cc.send("group reply from B", groupId=group_id)
    for client in (ca, cb, cc):
        await client.wait_until(lambda: "group reply from B" in messages(client))
    await asyncio.sleep(0.3)
    assert messages(ca) == ["from B to A", "hello group", "group reply from B"]
    assert messages(cb) == ["from A to B", "hello group", "group reply from B"]
    assert messages(cc) == ["hello group", "group reply from B"]     # nothing of the 1-on-1


@pytest.mark.gen_test(timeout=60)
async def test_membership_changes_reach_sockets_on_the_other_process(api, user_factory, runtime,
                                                                      second, clients):
    owner, late = await user_factory("o"), await user_factory("l")
    group_id = await make_group(api, owner, [])
    co = await clients(runtime, owner)
    cl = await clients(second, late)            # connected before being invited, on process B

    invited = await api.post("/api/groups/invite", token=owner.access,      # REST on process A
                             json={"groupId": group_id, "memberIds": [late.id]})
    assert invited.status == 201, invited.body
    await co.send("welcome", groupId=group_id)
    await cl.wait_until(lambda: "welcome" in messages(cl), what="the group message on B")

    kicked = await api.delete(f"/api/groups/{group_id}/members/{late.id}", token=owner.access)
    assert kicked.status == 200, kicked.body
    await co.send("after the kick", groupId=group_id)
    await co.wait_until(lambda: "after the kick" in messages(co))
    await asyncio.sleep(0.5)
    assert "after the kick" not in messages(cl)


@pytest.mark.gen_test(timeout=60)
async def test_a_deleted_account_loses_its_sockets_on_every_process(api, user_factory, runtime,
                                                                    second, clients):
    victim, friend = await user_factory("v"), await user_factory("f")
    on_a, on_b = await clients(runtime, victim), await clients(second, victim)
    watcher = await clients(second, friend)
    response = await api.delete("/api/auth/delete-account", json={"password": victim.password},
                                token=victim.access)                     # REST on process A
    assert response.status == 200, response.body
    for client in (on_a, on_b):
        await asyncio.wait_for(client.disconnected.wait(), 5)
    await asyncio.sleep(0.3)
    assert not watcher.disconnected.is_set()     # nobody else's


@pytest.mark.gen_test(timeout=90)
async def test_redis_restart_local_delivery_goes_on_and_the_cluster_comes_back(
        api, user_factory, runtime, second, clients, redis_server):
    if redis_server is None:
        pytest.skip("NEXUS_TEST_REDIS_URL: not our server to restart")
    a, a2, b = await user_factory("a"), await user_factory("x"), await user_factory("b")
    ca, ca2, cb = await clients(runtime, a), await clients(runtime, a2), await clients(second, b)
    api_b = Api(second.base_url)
    try:
        assert (await api.get("/api/health")).data["redis"] == "up"

        redis_server.stop()
        await _until(lambda: not runtime.ctx.cluster.up, "process A notices Redis is gone")
        health = await api.get("/api/health")
        assert health.status == 200 and health.data["redis"] == "down"
        await ca.send("still here", recipientId=a2.id)            # same process: delivered
        await ca2.wait_until(lambda: "still here" in messages(ca2))

        redis_server.start()                                       # same port
        for process in (runtime, second):
            await _until(lambda: process.ctx.cluster.up, "resubscribed after the restart", 20)
        assert (await api_b.get("/api/health")).data["redis"] == "up"
        await ca.send("back again", recipientId=b.id)
        await cb.wait_until(lambda: "back again" in messages(cb), what="cross-process after restart")
    finally:
        if redis_server.proc is None:
            redis_server.start()
        api_b.close()


async def _until(check, what: str, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.05)


@pytest.mark.gen_test(timeout=60)
async def test_node_redis_emitter_reaches_a_group_room_and_one_user(api, user_factory, runtime,
                                                                     second, clients, settings):
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "@socket.io" / "redis-emitter").is_dir():
        pytest.skip("node and tests/js/node_modules (npm ci) are needed for the Node emitter")
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    group_id = await make_group(api, a, [b])
    ca, cb, cc = await clients(runtime, a), await clients(second, b), await clients(second, c)

    async def emit(room: str, payload: dict) -> None:
        proc = await asyncio.create_subprocess_exec(
            node, str(JS_DIR / "redis_emit.js"), settings.redis_url, settings.redis_key, "/chat",
            room, "announcement", json.dumps(payload), cwd=JS_DIR,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()

    await emit(f"group:{group_id}", {"text": "to the group"})
    for client in (ca, cb):   # one member on each process
        await client.wait_for("announcement")
        # the Date arrives as JSON.stringify makes it; undefined drops out of objects, null in arrays
        assert client.of("announcement") == [[{"text": "to the group", "sentAt": "2026-11-30T12:00:00.250Z"},
                                              [1, None, "x"]]]
    await emit(f"user:{c.id}", {"text": "to c"})
    await cc.wait_for("announcement")
    assert cc.of("announcement")[0][0]["text"] == "to c"
    await asyncio.sleep(0.3)
    assert len(ca.of("announcement")) == len(cb.of("announcement")) == 1


class NodePeer:
    """tests/js/node_peer.js: a Node Socket.IO server on @socket.io/redis-adapter, with a client."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict] = []

    async def next(self, kind: str, timeout: float = 15) -> dict:
        async def read() -> dict:
            while True:
                raw = await self.proc.stdout.readline()
                assert raw, f"node peer exited: {(await self.proc.stderr.read()).decode()[-800:]}"
                line = json.loads(raw)
                self.lines.append(line)
                if line["type"] == kind:
                    return line
                assert line["type"] != "error", line
        return await asyncio.wait_for(read(), timeout)

    async def send(self, **command) -> None:
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def close(self) -> None:
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@pytest.mark.gen_test(timeout=90)
async def test_a_node_socketio_server_on_the_redis_adapter_shares_rooms_both_ways(
        api, user_factory, runtime, clients, settings):
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "@socket.io" / "redis-adapter").is_dir():
        pytest.skip("node and tests/js/node_modules (npm ci) are needed for the Node peer")
    a, b = await user_factory("a"), await user_factory("b")
    group_id = await make_group(api, a, [b])
    room = f"group:{group_id}"
    ca = await clients(runtime, a)
    proc = await asyncio.create_subprocess_exec(
        node, str(JS_DIR / "node_peer.js"), settings.redis_url, settings.redis_key, str(free_port()), room,
        cwd=JS_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peer = NodePeer(proc)
    try:
        node_client = (await peer.next("ready"))["id"]

        # ours -> Node: a group message sent on our process reaches the Node server's socket in the room
        sent = await ca.send("to everyone in the group", groupId=group_id)
        event = await peer.next("event")
        assert (event["event"], event["args"]) == ("message", [sent])

        # Node -> ours: the Node server's room broadcast reaches our member's socket (and theirs)
        await peer.send(cmd="emit", room=room, event="announcement", args=[{"from": "node"}, 2])
        await ca.wait_for("announcement")
        assert ca.of("announcement") == [[{"from": "node"}, 2]]
        assert (await peer.next("event"))["event"] == "announcement"

        # Node asks every server for the room's sockets: ours answer, it does not time out
        await peer.send(cmd="fetch", room=room)
        fetched = await peer.next("fetched")
        assert len(fetched["ids"]) == 2 and node_client in fetched["ids"]
        ours = [rooms for sid, rooms in zip(fetched["ids"], fetched["rooms"]) if sid != node_client][0]
        assert room in ours and f"user:{a.id}" in ours
    finally:
        await peer.close()
