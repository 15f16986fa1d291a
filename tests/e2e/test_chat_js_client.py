"""The official JavaScript client (socket.io-client v4, default options: polling, then the
upgrade to WebSocket) chats 1-on-1 with a python-socketio peer through the live server.

tests/js holds package.json and package-lock.json; `npm install --no-audit --no-fund` runs
there once per session (the node_client fixture, tests/e2e/conftest.py) unless node_modules is
already up to date with the lock file. The test skips (saying why) only when node/npm are missing
or the install fails."""
from __future__ import annotations

import asyncio
import json

import pytest

from .chat_support import JS_DIR

SCRIPT = JS_DIR / "chat_client.js"


class NodeClient:
    """The Node script as a subprocess: JSON lines out, commands in."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen: list[dict] = []
        self._next_id = 0

    @classmethod
    async def start(cls, node: str, base_url: str, token: str) -> "NodeClient":
        proc = await asyncio.create_subprocess_exec(
            node, str(SCRIPT), base_url, token, cwd=JS_DIR, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    async def next(self, timeout: float = 10) -> dict:
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            err = await self.proc.stderr.read()
            raise AssertionError(f"node client exited: {err.decode(errors='replace')[-2000:]}")
        item = json.loads(line)
        self.seen.append(item)
        return item

    async def until(self, predicate, timeout: float = 10) -> dict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            item = await self.next(max(0.1, deadline - loop.time()))
            if predicate(item):
                return item

    async def emit_with_ack(self, event: str, payload: dict) -> object:
        self._next_id += 1
        command = {"cmd": "emit", "id": self._next_id, "event": event, "payload": payload}
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()
        answer = await self.until(lambda i: i["type"] in ("ack", "ack_error") and i.get("id") == self._next_id)
        assert answer["type"] == "ack", answer
        return answer["ack"]

    async def close(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.stdin.write(b'{"cmd": "close"}\n')
                await self.proc.stdin.drain()
                await asyncio.wait_for(self.proc.wait(), 5)
            except (asyncio.TimeoutError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()


@pytest.mark.gen_test(timeout=90)
async def test_official_js_client_chats_with_a_python_client(runtime, user_factory, chat, node_client):
    js_user, py_user = await user_factory("js"), await user_factory("py")
    peer = await chat(py_user, ["websocket"])
    await peer.expect("userStatusChanged")
    js = await NodeClient.start(node_client, runtime.base_url, js_user.access)
    try:
        opened = await js.until(lambda i: i["type"] == "open")
        assert opened["transport"] == "polling"                   # the default: polling first…
        connected = await js.until(lambda i: i["type"] in ("connect", "connect_error"))
        assert connected["type"] == "connect", js.seen
        if not any(i["type"] == "upgrade" for i in js.seen):
            await js.until(lambda i: i["type"] == "upgrade")      # …then the upgrade
        assert [i["transport"] for i in js.seen if i["type"] == "upgrade"] == ["websocket"]
        assert (await js.until(lambda i: i["type"] == "event"))["args"][0]["status"] == "online"

        # JS → Python, with emitWithAck
        ack = await js.emit_with_ack("sendMessage", {"recipientId": py_user.id, "content": "hello from node"})
        assert ack["content"] == "hello from node" and ack["senderId"] == js_user.id
        assert await peer.expect("message") == [ack]

        # Python → JS
        reply = await peer.send("hello from python", recipientId=js_user.id)
        got = await js.until(lambda i: i["type"] == "event")
        assert got == {"type": "event", "event": "message", "args": [reply]}

        # read receipt back to Python
        receipt = await js.emit_with_ack("markConversationAsRead", {"conversationId": ack["conversationId"]})
        assert receipt["conversationId"] == ack["conversationId"] and receipt["lastReadMessageId"] == reply["id"]
        assert await peer.expect("messageRead") == [{**receipt, "readBy": js_user.id}]

        # the message lifecycle: both sides see each change once, acks are the REST shapes
        async def js_event(name: str, since: int) -> dict:
            def found():
                return [i for i in js.seen[since:] if i["type"] == "event" and i["event"] == name]
            if not found():
                await js.until(lambda i: i["type"] == "event" and i["event"] == name)
            [event] = found()
            return event["args"][0]

        mark = len(js.seen)
        edited = await js.emit_with_ack("editMessage", {"messageId": ack["id"], "content": "hello again"})
        assert edited["content"] == "hello again" and edited["editedAt"]
        assert await peer.expect("messageUpdated") == [edited]
        assert await js_event("messageUpdated", mark) == edited
        mark = len(js.seen)
        reacted = await peer.call("reactToMessage", {"messageId": ack["id"], "emoji": "\U0001F44D", "react": True})
        assert reacted["reactions"][0]["userIds"] == [py_user.id]
        assert (await js_event("messageReaction", mark))["count"] == 1
        await peer.expect("messageReaction")
        mark = len(js.seen)
        tombstone = await js.emit_with_ack("deleteMessage", {"messageId": ack["id"]})
        assert tombstone["content"] == "" and tombstone["reactions"] == []
        [deleted] = await peer.expect("messageDeleted")
        assert deleted["messageId"] == ack["id"] and deleted["deletedBy"] == js_user.id
        assert await js_event("messageDeleted", mark) == deleted

        # an error answers the ack with the envelope (emitWithAck never hangs) plus `exception`
        error = await js.emit_with_ack("sendMessage", {"recipientId": js_user.id, "content": "me"})
        assert error["success"] is False and error["statusCode"] == 400
        [notice] = [i for i in js.seen if i["type"] == "event" and i["event"] == "exception"]
        assert notice["args"][0]["event"] == "sendMessage" and notice["args"][0]["statusCode"] == 400
    finally:
        await js.close()
    [gone] = await peer.expect("userStatusChanged")
    assert (gone["userId"], gone["status"]) == (js_user.id, "offline")


@pytest.mark.gen_test(timeout=60)
async def test_official_js_client_sees_unauthorized(runtime, node_client):
    js = await NodeClient.start(node_client, runtime.base_url, "not-a-token")
    try:
        refused = await js.until(lambda i: i["type"] in ("connect", "connect_error"))
        assert refused == {"type": "connect_error", "message": "Unauthorized"}
    finally:
        await js.close()
