"""The box's Python ceiling: a bare Tornado WebSocket server that fakes the `/chat` events.

It speaks the same Engine.IO v4 / Socket.IO v5 framing as Nexus Chat over WebSocket only
(`GET /socket.io/?EIO=4&transport=websocket`): open packet, server pings, `40/chat` CONNECT
(the user id is read from the JWT's `sub` without checking it: no database, no secrets),
`sendMessage` → ack with a Message-shaped dict + `message` to the recipient's sockets (and the
sender's other sockets), or to every member's sockets but the sender's for a `groupId`, encoded
once per broadcast. Over HTTP: `GET /api/auth/me` answers a user-shaped envelope for the
token's `sub`, and `POST /api/groups` / `POST /api/groups/invite` keep a group's members in
memory (what `group-max` needs to set up). No database, no validation, no presence.
Everything the real server does beyond this is the cost of the product.

    python bench/ceiling_server.py --port 3999 [--ping-interval-ms 25000]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import resource
import secrets
import signal
import uuid

import tornado.web
import tornado.websocket
from tornado.ioloop import IOLoop

try:
    import orjson

    def dumps(obj) -> str:
        return orjson.dumps(obj).decode()
    loads = orjson.loads
except ImportError:  # pragma: no cover
    def dumps(obj) -> str:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    loads = json.loads

NS = "/chat"
PREFIX_EVENT = "42/chat,"
PREFIX_CONNECT = "40/chat"


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def jwt_sub(token: str) -> str | None:
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        return loads(base64.urlsafe_b64decode(payload))["sub"]
    except Exception:
        return None


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Hub:
    def __init__(self, ping_interval_ms: int, ping_timeout_ms: int) -> None:
        self.ping_interval = ping_interval_ms / 1000
        self.ping_timeout = ping_timeout_ms / 1000
        self.users: dict[str, set["ChatSocket"]] = {}
        self.groups: dict[str, set[str]] = {}   # group id -> member user ids
        self.open_packet = None

    def open(self, sid: str) -> str:
        return "0" + dumps({"sid": sid, "upgrades": [], "pingInterval": int(self.ping_interval * 1000),
                            "pingTimeout": int(self.ping_timeout * 1000), "maxPayload": 1000000})


class ChatSocket(tornado.websocket.WebSocketHandler):
    def initialize(self, hub: Hub) -> None:
        self.hub = hub
        self.user_id: str | None = None
        self.ns_sid: str | None = None
        self.ping_handle = None
        self.pong_deadline = None

    def check_origin(self, origin: str) -> bool:
        return True

    def get_compression_options(self):
        return None

    def open(self) -> None:
        if self.get_query_argument("EIO", "") != "4":
            self.close()
            return
        # Small frames both ways: without TCP_NODELAY, Nagle + the client's delayed ACK hold
        # a delivery back by ~40 ms whenever an earlier frame to that socket is still unacked.
        self.set_nodelay(True)
        self.write_message(self.hub.open(secrets.token_urlsafe(15)))
        self._schedule_ping()

    def _schedule_ping(self) -> None:
        self.ping_handle = IOLoop.current().call_later(self.hub.ping_interval, self._ping)

    def _ping(self) -> None:
        self.send("2")
        self.pong_deadline = IOLoop.current().call_later(self.hub.ping_timeout, self.close)

    def send(self, data: str) -> None:
        try:
            self.write_message(data).add_done_callback(_consume)
        except tornado.websocket.WebSocketClosedError:
            pass

    def on_message(self, message) -> None:
        if message == "3":
            if self.pong_deadline is not None:
                IOLoop.current().remove_timeout(self.pong_deadline)
                self.pong_deadline = None
                self._schedule_ping()
            return
        if message.startswith(PREFIX_EVENT):
            self._event(message[len(PREFIX_EVENT):])
        elif message.startswith(PREFIX_CONNECT):
            self._connect(message[len(PREFIX_CONNECT):].lstrip(","))
        elif message.startswith("41/chat"):
            self._leave()
        elif message == "1":
            self.close()

    def _connect(self, body: str) -> None:
        auth = loads(body) if body else {}
        token = str((auth or {}).get("token") or "")
        if token.lower().startswith("bearer "):
            token = token[7:]
        user_id = jwt_sub(token)
        if user_id is None:
            self.send('44/chat,{"message":"Unauthorized"}')
            return
        self.user_id = user_id
        self.ns_sid = secrets.token_urlsafe(15)
        self.hub.users.setdefault(user_id, set()).add(self)
        self.send(PREFIX_CONNECT + "," + dumps({"sid": self.ns_sid}))

    def _event(self, body: str) -> None:
        i = 0
        while i < len(body) and body[i].isdigit():
            i += 1
        ack_id = body[:i]
        args = loads(body[i:])
        if self.user_id is None or not args:
            return
        name, payload = args[0], (args[1] if len(args) > 1 else {})
        if name != "sendMessage":
            if ack_id:
                self.send(f"43/chat,{ack_id}" + dumps([None]))
            return
        stamp = now_iso()
        message = {
            "id": str(uuid.uuid4()), "content": payload.get("content"), "senderId": self.user_id,
            "sender": {"id": self.user_id, "username": "ceiling", "fullName": "Ceiling",
                       "avatarUrl": None, "bio": None, "status": "online", "lastSeenAt": stamp},
            "conversationId": str(uuid.uuid4()), "groupId": None, "isRead": False, "readAt": None,
            "clientMessageId": payload.get("clientMessageId"), "createdAt": stamp, "updatedAt": stamp,
        }
        group_id = payload.get("groupId")
        if group_id is not None:
            message["conversationId"], message["groupId"] = None, group_id
        encoded = dumps(message)
        if ack_id:
            self.send(f"43/chat,{ack_id}[{encoded}]")
        packet = f'42/chat,["message",{encoded}]'  # encoded once for every receiver
        receivers = (self.hub.groups.get(group_id, ()) if group_id is not None
                     else (payload.get("recipientId"), self.user_id))
        for user_id in receivers:
            for sock in self.hub.users.get(user_id, ()):
                if sock is not self:
                    sock.send(packet)

    def _leave(self) -> None:
        if self.user_id is not None:
            peers = self.hub.users.get(self.user_id)
            if peers is not None:
                peers.discard(self)
                if not peers:
                    del self.hub.users[self.user_id]
            self.user_id = None

    def on_close(self) -> None:
        self._leave()
        loop = IOLoop.current()
        for handle in (self.ping_handle, self.pong_deadline):
            if handle is not None:
                loop.remove_timeout(handle)


def _consume(future) -> None:
    if not future.cancelled():
        future.exception()


class Health(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"success": True, "statusCode": 200, "data": {"status": "ok", "database": "none"}})


class ApiHandler(tornado.web.RequestHandler):
    """The envelope around ``data``, for the token's user (401 without one)."""

    def initialize(self, hub: Hub) -> None:
        self.hub = hub

    def prepare(self) -> None:
        header = self.request.headers.get("Authorization", "")
        self.user_id = jwt_sub(header[7:]) if header.lower().startswith("bearer ") else None
        if self.user_id is None:
            self.set_status(401)
            self.finish({"success": False, "statusCode": 401, "message": "Unauthorized"})

    def answer(self, data: dict, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(dumps({"success": True, "statusCode": status, "data": data,
                           "timestamp": now_iso(), "path": self.request.path}))


class Me(ApiHandler):
    def get(self) -> None:
        stamp = now_iso()
        self.answer({"id": self.user_id, "email": f"{self.user_id}@ceiling.example.com",
                     "username": "ceiling", "fullName": "Ceiling", "avatarUrl": None, "bio": None,
                     "status": "online", "lastSeenAt": stamp, "isEmailVerified": True,
                     "createdAt": stamp, "updatedAt": stamp})


class Groups(ApiHandler):
    def post(self) -> None:
        group_id = str(uuid.uuid4())
        self.hub.groups[group_id] = {self.user_id}
        self.answer({"id": group_id, **loads(self.request.body or b"{}")}, 201)


class GroupInvite(ApiHandler):
    def post(self) -> None:
        body = loads(self.request.body or b"{}")
        members = self.hub.groups.get(body.get("groupId"))
        if members is None:
            self.set_status(404)
            self.finish({"success": False, "statusCode": 404, "message": "Group not found"})
            return
        members.update(body.get("memberIds") or ())
        self.answer({"groupId": body["groupId"], "memberIds": sorted(members)})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3999)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ping-interval-ms", type=int, default=25000)
    parser.add_argument("--ping-timeout-ms", type=int, default=20000)
    args = parser.parse_args()
    raise_nofile()
    hub = Hub(args.ping_interval_ms, args.ping_timeout_ms)
    app = tornado.web.Application([
        (r"/socket.io/", ChatSocket, {"hub": hub}),
        (r"/api/health", Health),
        (r"/api/auth/me", Me, {"hub": hub}),
        (r"/api/groups", Groups, {"hub": hub}),
        (r"/api/groups/invite", GroupInvite, {"hub": hub}),
    ])
    server = app.listen(args.port, args.host)  # default backlog, like the product
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


if __name__ == "__main__":
    asyncio.run(main())
