"""Message search schemas: the query of GET /api/chat/search and the page it answers."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from .chat import MessageSchema, UuidString
from .common import Trimmed, UserPublicSchema

MAX_QUERY = 200


class SearchQuery(Schema):
    q = Trimmed(required=True, validate=validate.Length(1, MAX_QUERY),
                metadata={"description": "Words to find, taken literally (no operators or "
                          "wildcards); every word must occur. Words the index does not hold "
                          "(too short, or very common) are ignored."})
    recipientId = UuidString(load_default=None, allow_none=True,
                             metadata={"description": "Only your 1-on-1 conversation with this user"})
    groupId = UuidString(load_default=None, allow_none=True,
                         metadata={"description": "Only this group (you must be a member)"})
    before = UuidString(load_default=None, allow_none=True,
                        metadata={"description": "The `nextBefore` of the previous page"})
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 50))

    # services.search.search_messages refuses both, for the OpenAPI document:
    RULE = "At most one of recipientId or groupId."
    JSON_SCHEMA = {"not": {"required": ["recipientId", "groupId"]}}


class SearchGroupSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    iconUrl = fields.String(allow_none=True)


class SearchConversationSchema(Schema):
    id = fields.UUID()
    partner = fields.Nested(UserPublicSchema, allow_none=True)


class SearchHitSchema(Schema):
    message = fields.Nested(MessageSchema)
    snippet = fields.String(metadata={"description": "HTML: the message text around the first "
                                      "match, escaped, with matches inside <mark>…</mark>"})
    conversation = fields.Nested(SearchConversationSchema, allow_none=True)
    group = fields.Nested(SearchGroupSchema, allow_none=True)


class SearchPageSchema(Schema):
    results = fields.List(fields.Nested(SearchHitSchema))
    hasMore = fields.Boolean()
    nextBefore = fields.UUID(allow_none=True)
