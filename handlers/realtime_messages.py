"""The /chat events of a message's life after sending. Each validates its payload and calls
the same service as its REST route, so the ack is the REST answer's `data`; the services
publish the resulting events."""
from __future__ import annotations

from typing import Any

from nexus_chat.schemas import lifecycle as lifecycle_schemas
from nexus_chat.schemas.loading import load_schema
from nexus_chat.services import message_changes, reactions, read_state


async def edit_message(namespace: Any, socket: Any, user_id: str, payload: Any) -> dict:
    body = load_schema(lifecycle_schemas.EditMessagePayload, payload)
    return await message_changes.edit_message(namespace.ctx, user_id, body["messageId"], body["content"])


async def delete_message(namespace: Any, socket: Any, user_id: str, payload: Any) -> dict:
    body = load_schema(lifecycle_schemas.DeleteMessagePayload, payload)
    return await message_changes.delete_message(namespace.ctx, user_id, body["messageId"])


async def react_to_message(namespace: Any, socket: Any, user_id: str, payload: Any) -> dict:
    body = load_schema(lifecycle_schemas.ReactPayload, payload)
    return await reactions.react(namespace.ctx, user_id, body["messageId"], body["emoji"], body["react"])


async def mark_read(namespace: Any, socket: Any, user_id: str, payload: Any) -> dict:
    """`{conversationId | groupId, messageId?}` (older clients: `{conversationId, recipientId?}`)."""
    body = load_schema(lifecycle_schemas.ReadPayload, payload)
    return await read_state.mark_read(
        namespace.ctx, user_id, conversation_id=body["conversationId"], group_id=body["groupId"],
        message_id=body["messageId"], recipient_id=body["recipientId"], origin_socket=socket.sid)


EVENTS = {
    "markConversationAsRead": mark_read,
    "editMessage": edit_message,
    "deleteMessage": delete_message,
    "reactToMessage": react_to_message,
}
