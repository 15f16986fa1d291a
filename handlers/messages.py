"""REST routes of a message's life after sending: edit, delete, edit history, reactions,
read pointers and receipts, and the inbox. The /chat events `editMessage`, `deleteMessage`,
`reactToMessage` and `markConversationAsRead` call the same services and answer the same
shapes (handlers/realtime_messages.py)."""
from __future__ import annotations

from nexus_chat.schemas import chat as chat_s
from nexus_chat.schemas import lifecycle as lifecycle_schemas
from nexus_chat.services import inbox, message_changes, reactions, read_state
from nexus_chat.web import BaseHandler, Op

TAG = "Chat"


class MessageHandler(BaseHandler):
    path_params = lifecycle_schemas.MessagePath
    ops = {
        "PATCH": Op("Edit your message (within the edit window); earlier versions are kept",
                    body=lifecycle_schemas.EditBody, errors=(400, 401, 403, 404, 409), response=chat_s.MessageSchema, tag=TAG),
        "DELETE": Op("Delete a message (yours, or any of a group you own or administer); it stays "
                     "in history as a tombstone", errors=(400, 401, 403, 404),
                     response=chat_s.MessageSchema, tag=TAG),
    }

    async def patch(self, messageId: str) -> None:
        ids = self.path_ids(messageId=messageId)
        body = self.body_args()
        message = await message_changes.edit_message(self.ctx, self.user_id, ids["messageId"], body["content"])
        self.respond(message, "Message updated successfully")

    async def delete(self, messageId: str) -> None:
        ids = self.path_ids(messageId=messageId)
        message = await message_changes.delete_message(self.ctx, self.user_id, ids["messageId"])
        self.respond(message, "Message deleted successfully")


class EditsHandler(BaseHandler):
    path_params = lifecycle_schemas.MessagePath
    ops = {"GET": Op("Every version of a message, oldest first; the last is the current one",
                     errors=(400, 401, 404), response=[lifecycle_schemas.EditVersionSchema], tag=TAG)}

    async def get(self, messageId: str) -> None:
        ids = self.path_ids(messageId=messageId)
        versions = await message_changes.message_edits(self.ctx, self.user_id, ids["messageId"])
        self.respond(versions, "Message versions retrieved successfully")


class ReactionHandler(BaseHandler):
    path_params = lifecycle_schemas.ReactionPath
    ops = {
        "PUT": Op("React to a message with one emoji or a :shortcode: (idempotent)",
                  errors=(400, 401, 404, 409), response=chat_s.MessageSchema, tag=TAG),
        "DELETE": Op("Take your reaction back (idempotent)", errors=(400, 401, 404, 409),
                     response=chat_s.MessageSchema, tag=TAG),
    }

    async def put(self, messageId: str, emoji: str) -> None:
        await self._react(messageId, emoji, True)

    async def delete(self, messageId: str, emoji: str) -> None:
        await self._react(messageId, emoji, False)

    async def _react(self, message_id: str, emoji: str, react: bool) -> None:
        ids = self.path_ids(messageId=message_id, emoji=emoji)
        message = await reactions.react(self.ctx, self.user_id, ids["messageId"], ids["emoji"], react)
        self.respond(message, "Reaction saved" if react else "Reaction removed")


class ReceiptsHandler(BaseHandler):
    path_params = lifecycle_schemas.MessagePath
    ops = {"GET": Op("Who of the conversation or group has read a message (from their read pointers)",
                     errors=(400, 401, 404), response=lifecycle_schemas.ReceiptsSchema, tag=TAG)}

    async def get(self, messageId: str) -> None:
        ids = self.path_ids(messageId=messageId)
        self.respond(await read_state.receipts(self.ctx, self.user_id, ids["messageId"]),
                     "Read receipts retrieved successfully")


class ReadHandler(BaseHandler):
    ops = {"POST": Op("Mark a conversation or group read up to a message (default: the newest); "
                      "your read pointer only moves forward", body=lifecycle_schemas.ReadPayload,
                      errors=(400, 401, 403, 404), response=lifecycle_schemas.ReadStateSchema, tag=TAG)}

    async def post(self) -> None:
        body = self.body_args()
        state = await read_state.mark_read(
            self.ctx, self.user_id, conversation_id=body["conversationId"], group_id=body["groupId"],
            message_id=body["messageId"], recipient_id=body["recipientId"])
        self.respond(state, "Marked as read")


class ConversationsHandler(BaseHandler):
    ops = {"GET": Op("Your inbox: 1-on-1 conversations and groups, most recent activity first, "
                     "with the last message and unread count; paged by `cursor`",
                     query=lifecycle_schemas.InboxQuery, errors=(400, 401), response=lifecycle_schemas.InboxSchema, tag=TAG)}

    async def get(self) -> None:
        args = self.query_args()
        page = await inbox.conversations(self.ctx, self.user_id, limit=args["limit"], cursor=args["cursor"])
        self.respond(page, "Conversations retrieved successfully")


routes = [
    (r"/api/chat/conversations", ConversationsHandler),
    (r"/api/chat/read", ReadHandler),
    (r"/api/chat/messages/(?P<messageId>[^/]+)", MessageHandler),
    (r"/api/chat/messages/(?P<messageId>[^/]+)/edits", EditsHandler),
    (r"/api/chat/messages/(?P<messageId>[^/]+)/receipts", ReceiptsHandler),
    (r"/api/chat/messages/(?P<messageId>[^/]+)/reactions/(?P<emoji>[^/]+)", ReactionHandler),
]
