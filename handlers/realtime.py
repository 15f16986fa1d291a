"""The Socket.IO side of Nexus Chat (docs/realtime.md): the `/chat` namespace and the main
namespace `/` (connectable without a token, no events), built by ``socket_layer``.

Event handlers validate their payload with the same schemas as the REST routes, call the
same services (nexus_chat/services/chat.py) and ack. What the services publish reaches the
sockets through handlers/socket_delivery.py.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

from nexus_chat import ratelimit
from nexus_chat.context import AppContext
from nexus_chat.db import db_unreachable
from nexus_chat.event_log import EventLog
from nexus_chat.errors import ApiError, db_transient_error, error_body, too_many_requests
from nexus_chat.jsonutil import dumps
from nexus_chat.realtime.engine import Handshake
from nexus_chat.realtime.refusals import FORBIDDEN, Refusal
from nexus_chat.realtime.rooms import Adapter, InMemoryAdapter
from nexus_chat.realtime.server import ConnectRefused, Namespace, Socket, SocketServer
from nexus_chat.schemas import chat as chat_schemas
from nexus_chat.schemas.loading import load_schema
from nexus_chat.services import chat
from nexus_chat.services.connecting import ConnectReads
from nexus_chat.services.presence import Presence
from nexus_chat.tokens import bearer_token, token_value
from nexus_chat.web import client_ip, error_envelope

from . import realtime_messages
from .socket_recovery import Recovery
from .socket_delivery import CHAT, SocketDelivery, group_room, session_room, user_room

log = logging.getLogger("nexus_chat.realtime.chat")

UNAUTHORIZED = "Unauthorized"


def handshake_token(socket: Socket, auth: Any) -> str | None:
    """First match wins: CONNECT auth payload, Authorization header, `?token=`."""
    if isinstance(auth, dict) and auth.get("token"):
        return token_value(auth["token"])
    header = socket.handshake.headers.get("Authorization")
    if header:
        return bearer_token(header)
    return token_value(socket.handshake.query.get("token"))


class MainNamespace(Namespace):
    """`/`: accepts any connection (no token needed) and carries no events. Being in it
    proves nothing, so a session only in `/` is closed at the connect timeout like one in
    no namespace, and counts against the caps on unauthenticated sessions."""

    admits_session = False

    async def on_event(self, socket: Socket, event: str, args: list) -> list | None:
        return None


class ChatNamespace(Namespace):
    """`/chat`: a valid access token to connect; each event is validated, handed to a
    service and acked."""

    def __init__(self, ctx: AppContext, presence: Presence, recovery: Recovery | None = None) -> None:
        self.ctx = ctx
        self.presence = presence
        self.recovery = recovery   # connection-state recovery (realtime.recovery), else None
        self.reads = ConnectReads(ctx)   # a CONNECT's database reads, batched across connects
        self.busy = 0          # connects and events running (shutdown waits for them)
        self.closing = False
        self.events = {
            "sendMessage": self.send_message,
            "getMessages": self.get_messages,
            "joinGroup": self.join_group,
            "leaveGroup": self.leave_group,
            "typing": self.typing,
        }
        for name, handler in realtime_messages.EVENTS.items():
            self.events[name] = functools.partial(handler, self)

    # ---- connection ---------------------------------------------------------------------
    async def on_connect(self, socket: Socket, auth: dict | None) -> None:
        if self.closing:
            raise ConnectRefused("Server shutting down")
        self.busy += 1
        try:
            await self._connect(socket, auth)
        finally:
            self.busy -= 1

    async def _connect(self, socket: Socket, auth: dict | None) -> None:
        try:
            claims, account = await self.reads.authenticate(handshake_token(socket, auth))
            claim = await self.recovery.claim(claims.sub, auth) if self.recovery else None
        except ApiError:
            raise ConnectRefused(UNAUTHORIZED) from None
        except Exception as exc:
            raise _unavailable(exc) from None
        user_id = claims.sub
        socket.data["user_id"] = user_id
        socket.data["session_id"] = claims.sid
        joined_early = claim is None
        if joined_early:   # a new session hears its own presence; a recovered one joins below
            socket.join(user_room(user_id))
            socket.join(session_room(claims.sid))
        socket.data["counted"] = True
        try:
            await self.presence.connected(user_id)
            group_ids = await self.reads.group_ids(user_id, account)
            if claim is not None and not await self.recovery.fits(claim, user_id, group_ids):
                claim = None
            if (self.ctx.revoked_users.contains(user_id)     # deleted or logged out
                    or self.ctx.revoked_sessions.contains(claims.sid)):   # while connecting
                raise ConnectRefused(UNAUTHORIZED)
            # From here to the mark, no await: the groups are current, and every event from
            # now on reaches this socket through its rooms (membership changes through its
            # user room); recovery replays exactly what came before the mark.
            if not joined_early:
                if claim is not None:
                    self.recovery.restore(socket, claim)
                socket.join(user_room(user_id))
                socket.join(session_room(claims.sid))
            for group_id in group_ids:
                socket.join(group_room(group_id))
            if self.recovery:
                await self.recovery.finish(socket, user_id, group_ids, claim, self.recovery.mark(socket))
        except BaseException as exc:
            socket.data["counted"] = False
            await self.presence.disconnected(user_id)
            if isinstance(exc, Exception) and not isinstance(exc, ConnectRefused):
                raise _unavailable(exc) from None
            raise

    async def on_disconnect(self, socket: Socket, reason: str) -> None:
        if socket.data.pop("counted", False):
            await self.presence.disconnected(socket.data["user_id"])
            if self.recovery:
                await self.recovery.keep(socket, reason)

    # ---- events -------------------------------------------------------------------------
    async def on_event(self, socket: Socket, event: str, args: list) -> list | None:
        handler = self.events.get(event)
        if handler is None:
            return self._fail(socket, event, ApiError(400, f"Unknown event: {event}"))
        payload = args[0] if args else {}
        self.busy += 1
        try:
            result = await handler(socket, socket.data["user_id"], payload)
        except ApiError as exc:
            return self._fail(socket, event, exc)
        except Exception as exc:
            transient = db_transient_error(exc)
            if transient is None:
                log.exception("chat event %s failed user_id=%s", event, socket.data.get("user_id"))
                return self._fail(socket, event, ApiError(500, "Internal server error"))
            if not db_unreachable(exc):   # contention; an outage is logged once by the tracker
                log.warning("transient database error event=%s error=%s", event, exc)
            return self._fail(socket, event, transient)
        finally:
            self.busy -= 1
        return None if result is None else [result]

    @staticmethod
    def _fail(socket: Socket, event: str, exc: ApiError) -> list:
        """`exception` to the socket, and the REST error envelope as the ack."""
        extra: dict[str, Any] = {}
        if "Retry-After" in exc.headers:   # REST's header, as a field: seconds to wait
            extra["retryAfter"] = int(exc.headers["Retry-After"])
        notice: dict[str, Any] = {"status": "error", "statusCode": exc.status, "message": exc.message,
                                  "event": event}
        if exc.errors:
            notice["errors"] = exc.errors
        socket.emit("exception", {**notice, **extra})
        return [error_body(exc.status, exc.message, exc.errors, **extra)]

    async def send_message(self, socket: Socket, user_id: str, payload: Any) -> dict:
        body = load_schema(chat_schemas.SendMessagePayload, payload)
        sent = await chat.send_message(
            self.ctx, user_id, content=body["content"], recipient_id=body["recipientId"],
            group_id=body["groupId"], client_message_id=body["clientMessageId"], reply_to_id=body["replyToId"],
            origin_socket=socket.sid, attachment_ids=body["attachmentIds"])
        return sent.message

    async def get_messages(self, socket: Socket, user_id: str, payload: Any) -> list:
        args = load_schema(chat_schemas.MessagesQuery, payload)
        return await chat.list_messages(self.ctx, user_id, recipient_id=args["recipientId"],
                                        group_id=args["groupId"], limit=args["limit"],
                                        offset=args["offset"], before=args["before"], after=args["after"])

    async def join_group(self, socket: Socket, user_id: str, payload: Any) -> dict:
        group_id = load_schema(chat_schemas.GroupRoomPayload, payload)["groupId"]
        await chat.require_member(self.ctx, group_id, user_id)   # current: a kick meanwhile wins
        socket.join(group_room(group_id))
        return {"groupId": group_id, "joined": True}

    async def leave_group(self, socket: Socket, user_id: str, payload: Any) -> dict:
        group_id = load_schema(chat_schemas.GroupRoomPayload, payload)["groupId"]
        socket.leave(group_room(group_id))
        return {"groupId": group_id, "joined": False}

    async def typing(self, socket: Socket, user_id: str, payload: Any) -> None:
        body = load_schema(chat_schemas.TypingPayload, payload)
        await chat.typing(self.ctx, user_id, is_typing=body["isTyping"], recipient_id=body["recipientId"],
                          group_id=body["groupId"])
        return None


def _unavailable(exc: Exception) -> Exception:
    """A CONNECT that failed on the database: refused with the REST envelope's 503 as data
    (no traceback for an outage); anything else is left to the server's error log."""
    transient = db_transient_error(exc)
    if transient is None:
        return exc
    return ConnectRefused(transient.message, {"statusCode": transient.status,
                                              "retryAfter": int(transient.headers["Retry-After"])})


def handshake_error_body(refusal: Refusal, request) -> bytes:
    """Engine.IO request errors in the API's envelope, keeping the protocol's `code`."""
    return dumps(error_envelope(refusal.status, refusal.message, request.path, code=refusal.code))


def handshake_limits(ctx: AppContext):
    """The client address of a handshake (behind trusted proxies as for REST), and the
    per-IP rate limit every handshake counts against, as a REST request does."""

    def client_address(handshake: Handshake) -> str:
        return client_ip(handshake.remote_ip, handshake.headers, ctx.trusted_networks)

    def admit(handshake: Handshake) -> Refusal | None:
        wait = ctx.rate_limiter.hit_now(ratelimit.DEFAULT, client_address(handshake))
        if not wait:
            return None
        limited = too_many_requests(wait)
        return Refusal(limited.status, FORBIDDEN, limited.message, wait)

    return client_address, admit


@dataclass
class SocketLayer:
    """The Socket.IO server of a runtime, its `/chat` namespace and the delivery listener
    the runtime subscribes to ``ctx.events``."""

    server: SocketServer
    chat: ChatNamespace
    delivery: SocketDelivery

    def routes(self) -> list:
        return self.server.routes("/socket.io/")

    async def close(self, grace_s: float = 5.0) -> None:
        """Shutdown: close every connection, let running connects and events finish."""
        self.chat.closing = True
        self.server.close_all()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while self.chat.busy and loop.time() < deadline:
            await asyncio.sleep(0.01)


def room_adapter(settings) -> Adapter:
    """realtime.adapter: this process's rooms only, or rooms shared through Redis (started
    and stopped by the runtime)."""
    if settings.realtime_adapter == "redis":
        from nexus_chat.realtime.redis_adapter import RedisAdapter
        return RedisAdapter(settings.redis_url, ("/", CHAT), key=settings.redis_key)
    return InMemoryAdapter()


def socket_layer(ctx: AppContext, presence: Presence, event_log: EventLog | None = None,
                 adapter: Adapter | None = None, shared_recovery: Any = None) -> SocketLayer:
    """Builds the Socket.IO server from the settings with `/` and `/chat` (with connection-
    state recovery when ``realtime.recovery`` is on and an event log is given)."""
    settings = ctx.settings
    client_address, admit = handshake_limits(ctx)
    server = SocketServer(
        ping_interval_ms=settings.realtime_ping_interval_ms,
        ping_timeout_ms=settings.realtime_ping_timeout_ms,
        max_payload=settings.realtime_max_payload,
        connect_timeout_ms=settings.realtime_connect_timeout_ms,
        allowed_origins=list(settings.server_cors_origins),
        max_buffer_bytes=settings.realtime_max_buffer_bytes,
        adapter=adapter if adapter is not None else InMemoryAdapter(),
        error_body=handshake_error_body,
        max_attachment_bytes=settings.realtime_max_attachment_bytes or None,
        attachment_timeout_ms=settings.realtime_attachment_timeout_ms,
        max_unadmitted=settings.realtime_max_unauthenticated,
        # A per-IP limit like the rate limits, and switched with them (bench/ turns them off).
        max_unadmitted_per_client=(settings.realtime_max_unauthenticated_per_ip
                                   if settings.server_rate_limits else None),
        client_address=client_address,
        admit=admit,
    )
    recovering = settings.realtime_recovery and event_log is not None
    delivery = SocketDelivery(server, with_offsets=recovering, progress=ctx.progress)
    recovery = Recovery(ctx, delivery.progress, shared_recovery) if recovering else None
    chat_namespace = ChatNamespace(ctx, presence, recovery)
    server.add_namespace("/", MainNamespace())
    server.add_namespace(CHAT, chat_namespace)
    return SocketLayer(server, chat_namespace, delivery)
