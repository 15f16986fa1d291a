"""Chat REST routes (docs/api.md#chat); the real-time half is handlers/realtime.py."""
from __future__ import annotations

from nexus_chat.schemas import chat as chat_schemas
from nexus_chat.schemas import search as search_schemas
from nexus_chat.schemas import catchup as catchup_schemas
from nexus_chat.services import catchup, chat, search
from nexus_chat.web import BaseHandler, Op

TAG = "Chat"


class MessagesHandler(BaseHandler):
    ops = {"GET": Op("Messages of a 1-on-1 conversation or a group, newest first",
                     query=chat_schemas.MessagesQuery, errors=(400, 401, 403), response=[chat_schemas.MessageSchema], tag=TAG)}

    async def get(self) -> None:
        args = self.query_args()
        messages = await chat.list_messages(
            self.ctx, self.user_id, recipient_id=args["recipientId"], group_id=args["groupId"],
            limit=args["limit"], offset=args["offset"], before=args["before"], after=args["after"])
        self.respond(messages, "Messages retrieved successfully")


class RecentMessagesHandler(BaseHandler):
    ops = {"GET": Op("Your 1-on-1 conversations, most recent activity first, with the last "
                     "message and the unread count", errors=(401,), response=[chat_schemas.ConversationSchema],
                     tag=TAG)}

    async def get(self) -> None:
        conversations = await chat.recent_conversations(self.ctx, self.user_id)
        self.respond(conversations, "Recent conversations retrieved successfully")


class SearchHandler(BaseHandler):
    ops = {"GET": Op("Find messages in your conversations and current groups, newest first",
                     query=search_schemas.SearchQuery, errors=(400, 401, 403),
                     response=search_schemas.SearchPageSchema, tag=TAG)}

    async def get(self) -> None:
        args = self.query_args()
        page = await search.search_messages(
            self.ctx, self.user_id, args["q"], recipient_id=args["recipientId"],
            group_id=args["groupId"], before=args["before"], limit=args["limit"])
        self.respond(page, "Search results retrieved successfully")


class EventsHandler(BaseHandler):
    ops = {"GET": Op("Catch up: your events after an offset, oldest first (what a recovered "
                     "socket would have replayed)", query=catchup_schemas.EventsQuery,
                     errors=(400, 401, 410), response=catchup_schemas.EventsPageSchema, tag=TAG)}

    async def get(self) -> None:
        args = self.query_args()
        page = await catchup.events_since(self.ctx, self.user_id, args["after"], args["limit"])
        self.respond(page, "Events retrieved successfully")


routes = [
    (r"/api/chat/messages", MessagesHandler),
    (r"/api/chat/recent-messages", RecentMessagesHandler),
    (r"/api/chat/search", SearchHandler),
    (r"/api/chat/events", EventsHandler),
]
