"""Read state for 1-on-1 conversations and groups alike: one read pointer per member and chat,
moved only forward; receipts of a message computed from the pointers.

`markConversationAsRead` (socket) and POST /api/chat/read call ``mark_read``; GET
/api/chat/messages/:id/receipts calls ``receipts``. In a 1-on-1 conversation the messages'
``isRead``/``readAt`` keep their old meaning (the recipient has read them) for older clients.
"""
from __future__ import annotations

from typing import Any

from ..context import AppContext
from ..errors import bad_request, forbidden, not_found, validation_failed
from ..events import Audience
from ..jsonutil import iso, utcnow
from ..queries import chat as chat_q
from ..queries import read_pointers as read_pointers_queries
from ..rules import require_exactly_one
from ..shapes import user_public
from . import message_access as access
from .chat import require_member


async def _participants(ctx: AppContext, conversation_id: str, user_id: str) -> tuple[str, str]:
    cache = ctx.chat_cache
    pair = cache.participants(conversation_id)
    if pair is None:
        generation = cache.generation
        row = await chat_q.conversation_participants(ctx.db, conversation_id)
        if row is None:
            raise not_found("Conversation not found")
        pair = (row["user_low_id"], row["user_high_id"])
        cache.remember_conversation(conversation_id, *pair, generation)
    if user_id not in pair:
        raise forbidden("You are not a participant of this conversation")
    return pair


async def _target(ctx: AppContext, user_id: str, chat: tuple[str, str], message_id: str | None) -> dict | None:
    """seq and id of the message to read up to: the one named, else the newest someone else sent."""
    column, chat_id = chat
    if message_id is not None:
        position = await chat_q.message_position(ctx.db, message_id)
        if position is None or position[column] != chat_id:
            raise validation_failed(["messageId: Not a message of this conversation or group."])
        return {"seq": position["seq"], "id": message_id}
    if column == "group_id":
        return await read_pointers_queries.newest_group_message_not_from(ctx.db, chat_id, user_id)
    return await read_pointers_queries.newest_conversation_message_not_from(ctx.db, chat_id, user_id)


async def mark_read(ctx: AppContext, user_id: str, *, conversation_id: str | None = None,
                    group_id: str | None = None, message_id: str | None = None,
                    recipient_id: str | None = None, origin_socket: str | None = None) -> dict[str, Any]:
    """Moves the user's pointer up to ``message_id`` (default: the newest message someone
    else sent): one pointer write, whatever the size of the group. When it moved,
    `messageRead` goes to the other participants (a group: its room) and to the reader's
    other connections; a reader with ``sendReadReceipts`` off tells only their own.
    Returns {conversationId, groupId, lastReadMessageId, readAt}: where the pointer is."""
    require_exactly_one(conversationId=conversation_id, groupId=group_id)
    others: tuple[str, ...] = ()
    if conversation_id is not None:
        pair = await _participants(ctx, conversation_id, user_id)
        other = pair[1] if pair[0] == user_id else pair[0]
        if recipient_id is not None and recipient_id != other:
            raise bad_request("recipientId is not the other participant of this conversation")
        others = (other,)
        chat = ("conversation_id", conversation_id)
    else:
        await require_member(ctx, group_id, user_id)
        chat = ("group_id", group_id)
    chat_id = chat[1]
    target = await _target(ctx, user_id, chat, message_id)
    receipt = {"conversationId": conversation_id, "groupId": group_id, "lastReadMessageId": None, "readAt": None}
    if target is None:
        return receipt   # nothing to read yet
    now = utcnow()
    async with ctx.chat_cache.locks.hold(("read", chat_id, user_id)):   # events in write order
        moved = await read_pointers_queries.advance(ctx.db, chat_id=chat_id, user_id=user_id, conversation_id=conversation_id,
                                group_id=group_id, seq=target["seq"], now=now)
        shares = await read_pointers_queries.sends_read_receipts(ctx.db, user_id)
        if conversation_id is not None and shares:
            # isRead/readAt of the other's messages, as older clients know them: the sender
            # sees them, so a reader who does not share receipts leaves them unset.
            await chat_q.mark_read_up_to(ctx.db, conversation_id, others[0], target["seq"], now)
        if not moved:
            current = await read_pointers_queries.pointer(ctx.db, chat_id, user_id)
            if current is not None:
                return {**receipt, "lastReadMessageId": current["message_id"], "readAt": iso(current["read_at"])}
        receipt = {**receipt, "lastReadMessageId": target["id"], "readAt": iso(now)}
        if not shares:
            to = Audience.to_user(user_id, except_socket=origin_socket)
        elif group_id is not None:   # the reader too, should their socket have left the room
            to = Audience(users=frozenset((user_id,)), groups=frozenset((group_id,)),
                          except_socket=origin_socket)
        else:
            to = Audience.to_users((user_id, *others), except_socket=origin_socket)
        await ctx.events.publish("messageRead", {**receipt, "readBy": user_id}, to)
    return receipt


async def receipts(ctx: AppContext, user_id: str, message_id: str) -> dict[str, Any]:
    """Who of the message's conversation or group (its sender aside) has read it, from their
    pointers, in the order they read; ``unreadCount``: those who have not yet. Members who
    do not share read receipts are in neither. One query."""
    row = await access.message_for(ctx.db, message_id, user_id)
    if row["group_id"] is not None:
        rows = await read_pointers_queries.group_receipts(ctx.db, row["group_id"], row["sender_id"])
    else:
        rows = await read_pointers_queries.conversation_receipts(ctx.db, row["conversation_id"],
                                             (row["user_low_id"], row["user_high_id"]), row["sender_id"])
    read = sorted((r for r in rows if r["last_read_seq"] is not None and r["last_read_seq"] >= row["seq"]),
                  key=lambda r: (r["read_at"], r["id"]))
    return {"readBy": [{"user": user_public(r), "readAt": iso(r["read_at"])} for r in read],
            "unreadCount": len(rows) - len(read)}
