"""Chat: sending, history, recent conversations, read receipts (docs/api.md#chat,
docs/realtime.md#delivery-semantics).

The REST handlers and the /chat Socket.IO namespace call these same functions. They take
the AppContext and plain values and raise ApiError; after the COMMIT they publish what
happened, with its audience, on ``ctx.events`` (per conversation or group in commit order).
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pymysql

from ..context import AppContext
from ..db import Executor, is_duplicate_key, is_missing_parent
from ..errors import (ApiError, bad_request, conflict, forbidden, not_found, unauthorized,
                      validation_failed)
from ..events import Audience
from ..jsonutil import iso, utcnow
from ..message_writer import NewMessage
from ..queries import chat as chat_queries
from ..queries import groups
from ..rules import require_exactly_one
from ..shapes import message_shape, user_public, user_public_shared
from . import attachments, message_details
from ..metrics import MESSAGES_SENT

log = logging.getLogger("nexus_chat.chat")

NOT_A_MEMBER = "You are not a member of this group"
RECIPIENT_NOT_FOUND = "Recipient not found"
CLIENT_ID_REUSED = "clientMessageId was already used for a message to another recipient or group"


# ---- lookups -------------------------------------------------------------------------------
async def require_member(ctx: AppContext, group_id: str, user_id: str) -> None:
    """403 unless the user belongs to the group (a missing group answers the same).

    The answer is current when this returns: a membership change during the database read
    makes it read again. A caller that joins a room right after (no await in between) can
    therefore not miss a kick."""
    cache = ctx.chat_cache
    member = cache.is_member(group_id, user_id)
    while member is None:
        generation = cache.generation
        found = await groups.member_role(ctx.db, group_id, user_id) is not None
        if generation == cache.generation:
            cache.remember_member(group_id, user_id, found, generation)
            member = found
    if not member:
        raise forbidden(NOT_A_MEMBER)


async def _conversation_between(ctx: AppContext, user_id: str, other_id: str, *, create: bool) -> str | None:
    cache = ctx.chat_cache
    low, high = sorted((user_id, other_id))
    found = cache.conversation(low, high)
    if found is not None:
        return found
    generation = cache.generation
    row = await chat_queries.conversation_for_pair(ctx.db, low, high)
    if row is None:
        if not create:
            return None
        if await chat_queries.public_user(ctx.db, other_id) is None:
            raise not_found(RECIPIENT_NOT_FOUND)
        try:
            await chat_queries.insert_conversation_if_absent(
                ctx.db, conversation_id=str(uuid.uuid4()), creator_id=user_id, recipient_id=other_id,
                low_id=low, high_id=high, now=utcnow())
        except pymysql.err.IntegrityError as exc:
            if is_missing_parent(exc):   # the recipient was deleted meanwhile
                raise not_found(RECIPIENT_NOT_FOUND) from None
            raise
        row = await chat_queries.conversation_for_pair(ctx.db, low, high)
        if row is None:
            raise not_found(RECIPIENT_NOT_FOUND)
    cache.remember_conversation(row["id"], low, high, generation)
    return row["id"]


async def _sender(ctx: AppContext, user_id: str) -> dict:
    cache = ctx.chat_cache
    row = cache.profile(user_id)
    if row is None:
        row = await ctx.profile_reads.get(user_id)
        if row is None:
            raise unauthorized()   # the account is gone
        cache.remember_profile(user_id, row)
    return user_public(row)


# ---- sending -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sent:
    message: dict[str, Any]
    created: bool                 # False: an idempotent resend, nothing to deliver
    recipient_id: str | None
    group_id: str | None


async def send_message(ctx: AppContext, sender_id: str, *, content: str, recipient_id: str | None = None,
                       group_id: str | None = None, client_message_id: str | None = None,
                       reply_to_id: str | None = None, origin_socket: str | None = None,
                       attachment_ids: Sequence[str] = ()) -> Sent:
    """Stores a message (a row of the message writer's next multi-row INSERT) and publishes
    `message` once it is committed: to the group, or to both participants except
    ``origin_socket`` (the sending connection, which gets the message as its ack). Messages are
    stored in the order they are sent and published in commit order (message_writer.py). A reused
    ``client_message_id`` returns the stored message unchanged and publishes nothing.
    ``attachment_ids`` (the sender's unsent uploads) are claimed in the same transaction as
    the INSERT: all of them, or the message is not stored (400)."""
    require_exactly_one(recipientId=recipient_id, groupId=group_id)
    if recipient_id is not None:
        if recipient_id == sender_id:
            raise bad_request("You cannot send a message to yourself")
        conversation_id = await _conversation_between(ctx, sender_id, recipient_id, create=True)
    else:
        await require_member(ctx, group_id, sender_id)
        conversation_id = None
    sender = await _sender(ctx, sender_id)
    reply_to = None
    if reply_to_id is not None:
        reply_to = await message_details.reply_to(ctx, reply_to_id, conversation_id=conversation_id,
                                                  group_id=group_id)
    now = utcnow()
    row = {"id": str(uuid.uuid4()), "content": content, "conversation_id": conversation_id,
           "group_id": group_id, "is_read": 0, "read_at": None,
           "client_message_id": client_message_id, "created_at": now, "updated_at": now}
    claim = None
    if attachment_ids:
        async def claim(tx: Executor) -> list[dict[str, Any]]:
            return await attachments.attach(ctx, tx, row["id"], sender_id, list(attachment_ids))
    try:
        carried = await ctx.messages.write(NewMessage(
            row["id"], conversation_id, group_id, sender_id, content, client_message_id,
            reply_to_id, now, then=claim)) or []
    except pymysql.err.IntegrityError as exc:
        if client_message_id is not None and is_duplicate_key(exc):
            stored = await chat_queries.message_by_client_id(ctx.db, sender_id, client_message_id)
            if stored is not None:
                if (stored["conversation_id"], stored["group_id"]) != (conversation_id, group_id):
                    raise conflict(CLIENT_ID_REUSED) from None
                [message] = await message_details.detailed(ctx, [stored], sender_id)
                return Sent(message, False, recipient_id, group_id)
        if is_missing_parent(exc):
            raise _vanished(ctx, sender_id, recipient_id, group_id) from None
        raise
    # Committed. No await until the event is published: the writer resumes its callers in
    # commit order, and so they hand their events to the event log (message_writer.py).
    sent = Sent({**message_shape(row, sender), "replyTo": reply_to, "attachments": carried},
                True, recipient_id, group_id)
    MESSAGES_SENT.labels(kind="group" if group_id else "direct").inc()
    if group_id is not None:
        audience = Audience.to_group(group_id)
    else:
        audience = Audience.to_conversation(recipient_id, sender_id, except_socket=origin_socket)
    await ctx.events.publish("message", sent.message, audience)
    return sent


def _vanished(ctx: AppContext, sender_id: str, recipient_id: str | None, group_id: str | None) -> ApiError:
    """The conversation, group or an account disappeared between the checks and the INSERT."""
    cache = ctx.chat_cache
    if group_id is not None:
        cache.group_gone(group_id)
        return forbidden(NOT_A_MEMBER)
    cache.user_gone(recipient_id)
    cache.user_gone(sender_id)
    return not_found(RECIPIENT_NOT_FOUND)


# ---- history -------------------------------------------------------------------------------
async def list_messages(ctx: AppContext, user_id: str, *, recipient_id: str | None = None,
                        group_id: str | None = None, limit: int = 20, offset: int = 0,
                        before: str | None = None, after: str | None = None) -> list[dict[str, Any]]:
    """Newest first, or oldest first after ``after`` (a forward cursor); ``[]`` when the two
    users never talked."""
    require_exactly_one(recipientId=recipient_id, groupId=group_id)
    if group_id is not None:
        await require_member(ctx, group_id, user_id)
        target = ("group_id", group_id)
    else:
        conversation_id = await _conversation_between(ctx, user_id, recipient_id, create=False)
        if conversation_id is None:
            return []
        target = ("conversation_id", conversation_id)
    cursor, name = (before, "before") if before is not None else (after, "after")
    cursor_seq = None
    if cursor is not None:
        position = await chat_queries.message_position(ctx.db, cursor)
        if position is None or position[target[0]] != target[1]:
            raise validation_failed([f"{name}: Not a message of this conversation."])
        cursor_seq = position["seq"]
    if after is not None:
        if group_id is not None:
            rows = await chat_queries.group_messages_after(ctx.db, group_id, after_seq=cursor_seq,
                                                           limit=limit, offset=offset)
        else:
            rows = await chat_queries.conversation_messages_after(ctx.db, target[1], after_seq=cursor_seq,
                                                                  limit=limit, offset=offset)
    elif group_id is not None:
        rows = await chat_queries.group_messages(ctx.db, group_id, limit=limit, offset=offset, before_seq=cursor_seq)
    else:
        rows = await chat_queries.conversation_messages(ctx.db, target[1], limit=limit, offset=offset,
                                                        before_seq=cursor_seq)
    return await message_details.detailed(ctx, rows, user_id)


# Conversation ids are uuid4 text: "8" splits them in two halves of about the same size
# (any value would split them correctly).
RECENT_SPLIT = "8"


async def recent_conversations(ctx: AppContext, user_id: str) -> list[dict[str, Any]]:
    """The user's 1-on-1 conversations, latest activity first, with the last message and
    the number of messages from the other person still unread. Two statements at once on two
    connections (the conversations split by id: MariaDB works on both halves in parallel while
    this process decodes the first), merged in the statements' order; each user's
    UserPublic is built once (the user is in every row, each partner twice: as a
    participant and as the sender of the last message), from one statement's row."""
    halves = await asyncio.gather(
        *(chat_queries.recent_conversations(ctx.db, user_id, split=RECENT_SPLIT, above=above)
          for above in (False, True)))
    rows = list(heapq.merge(*halves, key=chat_queries.recent_order, reverse=True))
    users: dict = {}
    last_rows = [row["last_message"] for row in rows if row["last_message"] is not None]
    last = iter(await message_details.detailed(ctx, last_rows, user_id, users))
    return [{
        "id": row["id"],
        "creator": user_public_shared(row, "creator_", users),
        "recipient": user_public_shared(row, "recipient_", users),
        "lastMessage": next(last) if row["last_message"] is not None else None,
        "unreadCount": int(row["unread"]),
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    } for row in rows]


# ---- typing --------------------------------------------------------------------------------
async def typing(ctx: AppContext, user_id: str, *, is_typing: bool, recipient_id: str | None,
                 group_id: str | None) -> None:
    """A typing notice goes to another user, or to a group the user belongs to (not to the
    typer's own connections). Volatile: never stored or replayed."""
    notice: dict[str, Any] = {"userId": user_id, "isTyping": is_typing}
    if recipient_id is not None:
        if recipient_id == user_id:
            raise bad_request("You cannot send a typing notice to yourself")
        if not await _user_exists(ctx, recipient_id):
            raise not_found(RECIPIENT_NOT_FOUND)
        notice["recipientId"] = recipient_id
        audience = Audience.to_user(recipient_id)
    else:
        await require_member(ctx, group_id, user_id)
        notice["groupId"] = group_id
        audience = Audience.to_group(group_id, except_users=(user_id,))
    await ctx.events.publish("typing", notice, audience, volatile=True)


async def _user_exists(ctx: AppContext, user_id: str) -> bool:
    """Typing notices are frequent: the profile cache answers most of them."""
    cache = ctx.chat_cache
    if cache.profile(user_id) is not None:
        return True
    row = await chat_queries.public_user(ctx.db, user_id)
    if row is None:
        return False
    cache.remember_profile(user_id, row)
    return True


# ---- sockets -------------------------------------------------------------------------------
async def group_ids(ctx: AppContext, user_id: str) -> list[str]:
    """The groups the user belongs to (remembered as memberships), current when this
    returns: a membership change during the read makes it read again, so a caller joining
    the rooms right after (no await in between) cannot miss one."""
    cache = ctx.chat_cache
    while True:
        generation = cache.generation
        found = await groups.group_ids_for_user(ctx.db, user_id)
        if generation == cache.generation:
            break
    for group_id in found:
        cache.remember_member(group_id, user_id, True, generation)
    return found
