"""Chat schemas (docs/api.md#chat, docs/realtime.md#client-events): declared once, used by
the REST ops and to validate the payloads of the /chat Socket.IO events."""
from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..rules import exactly_one_problem
from .attachments import AttachmentSchema
from .common import Trimmed, UserPublicSchema

MAX_CONTENT = 5000
MAX_CLIENT_MESSAGE_ID = 64
MAX_ATTACHMENTS = 10


class UuidString(fields.UUID):
    """A UUID, handed to services as its canonical lower-case string."""

    def _deserialize(self, value, attr, data, **kwargs):
        return str(super()._deserialize(value, attr, data, **kwargs))


def _exactly_one_target(data: dict) -> None:
    problem = exactly_one_problem(recipientId=data.get("recipientId"), groupId=data.get("groupId"))
    if problem is not None:
        raise ValidationError(problem, "target")


class _OneTarget(Schema):
    recipientId = UuidString(load_default=None, allow_none=True,
                             metadata={"description": "The other user of a 1-on-1 conversation"})
    groupId = UuidString(load_default=None, allow_none=True, metadata={"description": "A group"})

    # The rule of _exactly_one_target, for the OpenAPI document: exactly one of the two is a string.
    RULE = exactly_one_problem(recipientId=None, groupId=None)
    JSON_SCHEMA = {"oneOf": [
        {"required": ["recipientId"], "properties": {"recipientId": {"type": "string"}}},
        {"required": ["groupId"], "properties": {"groupId": {"type": "string"}}},
    ]}

    @validates_schema
    def _one_target(self, data, **kwargs):
        _exactly_one_target(data)


class MessagesQuery(_OneTarget):
    """GET /chat/messages and the `getMessages` event."""
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))
    before = UuidString(load_default=None, allow_none=True,
                        metadata={"description": "A message id: only older messages are returned"})
    after = UuidString(load_default=None, allow_none=True,
                       metadata={"description": "A message id: only newer messages, oldest first "
                                 "(a forward cursor; not with `before`)"})

    # For the OpenAPI document: the target rule, and _one_cursor's.
    RULE = f"{_OneTarget.RULE} At most one of before or after."
    JSON_SCHEMA = {"allOf": [_OneTarget.JSON_SCHEMA, {"not": {
        "required": ["before", "after"],
        "properties": {"before": {"type": "string"}, "after": {"type": "string"}}}}]}

    @validates_schema
    def _one_cursor(self, data, **kwargs):
        if data.get("before") and data.get("after"):
            raise ValidationError("Give at most one of before or after.", "after")


class SendMessagePayload(_OneTarget):
    """The `sendMessage` event."""
    content = Trimmed(load_default="", validate=validate.Length(0, MAX_CONTENT),
                      metadata={"description": "1-5000 characters after trimming; may be empty "
                                "when the message carries attachments"})
    clientMessageId = fields.String(load_default=None, allow_none=True,
                                    validate=validate.Length(1, MAX_CLIENT_MESSAGE_ID))
    replyToId = UuidString(load_default=None, allow_none=True,
                           metadata={"description": "A message of the same conversation or group"})
    attachmentIds = fields.List(UuidString(), load_default=list,
                                validate=validate.Length(max=MAX_ATTACHMENTS),
                                metadata={"description": "Your uploads (POST /api/chat/attachments) "
                                          "not sent yet, in the order to show them"})

    @validates_schema
    def _content_or_attachments(self, data, **kwargs):
        if not data.get("content") and not data.get("attachmentIds"):
            raise ValidationError("Shorter than minimum length 1.", "content")

    @staticmethod
    def accept_plain(data: Any) -> dict[str, Any] | None:
        """What ``load`` returns for a payload that is plainly valid (ids in canonical form),
        without marshmallow's per-field machinery (most of a send's validation cost); None
        for anything else, which ``load`` then validates and words the errors of."""
        if type(data) is not dict or not data.keys() <= _SEND_FIELDS:
            return None
        content = data.get("content", "")
        client_id = data.get("clientMessageId")
        attachment_ids = data.get("attachmentIds", [])
        recipient_id, group_id = data.get("recipientId"), data.get("groupId")
        reply_to_id = data.get("replyToId")
        if (type(content) is not str or len(content := content.strip()) > MAX_CONTENT
                or not (client_id is None or (type(client_id) is str and 1 <= len(client_id) <= MAX_CLIENT_MESSAGE_ID))
                or type(attachment_ids) is not list or len(attachment_ids) > MAX_ATTACHMENTS
                or not all(_canonical_uuid(i) for i in attachment_ids)
                or not all(i is None or _canonical_uuid(i) for i in (recipient_id, group_id, reply_to_id))
                or (recipient_id is None) == (group_id is None)
                or not (content or attachment_ids)):
            return None
        return {"content": content, "recipientId": recipient_id, "groupId": group_id,
                "clientMessageId": client_id, "replyToId": reply_to_id, "attachmentIds": list(attachment_ids)}


_SEND_FIELDS = frozenset(SendMessagePayload._declared_fields)
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _canonical_uuid(value: Any) -> bool:
    """A UUID string exactly as ``str(uuid.UUID(…))`` writes it (UuidString's output)."""
    return type(value) is str and len(value) == 36 and _CANONICAL_UUID.fullmatch(value) is not None


class GroupRoomPayload(Schema):
    """The `joinGroup` and `leaveGroup` events."""
    groupId = UuidString(required=True)


class TypingPayload(_OneTarget):
    """The `typing` event."""
    isTyping = fields.Boolean(required=True)


class ReactionSchema(Schema):
    emoji = fields.String()
    count = fields.Integer()
    userIds = fields.List(fields.UUID(), metadata={"description": "The first 10 who reacted"})
    reactedByMe = fields.Boolean(metadata={"description": "Always false in events"})


class ReplyToSchema(Schema):
    id = fields.UUID()
    senderId = fields.UUID(allow_none=True)
    sender = fields.Nested(UserPublicSchema, allow_none=True)
    snippet = fields.String(metadata={"description": "The first 100 characters; empty once deleted"})
    deleted = fields.Boolean()


class MessageSchema(Schema):
    """Message — response documentation (the same shape on REST and Socket.IO)."""
    id = fields.UUID()
    content = fields.String()
    senderId = fields.UUID(allow_none=True)
    sender = fields.Nested(UserPublicSchema, allow_none=True)
    conversationId = fields.UUID(allow_none=True)
    groupId = fields.UUID(allow_none=True)
    isRead = fields.Boolean()
    readAt = fields.DateTime(allow_none=True)
    clientMessageId = fields.String(allow_none=True)
    createdAt = fields.DateTime()
    updatedAt = fields.DateTime()
    editedAt = fields.DateTime(allow_none=True)
    deletedAt = fields.DateTime(allow_none=True)
    deletedBy = fields.UUID(allow_none=True)
    replyTo = fields.Nested(ReplyToSchema, allow_none=True)
    reactions = fields.List(fields.Nested(ReactionSchema))
    attachments = fields.List(fields.Nested(AttachmentSchema))


class ConversationSchema(Schema):
    """Conversation — response documentation."""
    id = fields.UUID()
    creator = fields.Nested(UserPublicSchema)
    recipient = fields.Nested(UserPublicSchema)
    lastMessage = fields.Nested(MessageSchema, allow_none=True)
    unreadCount = fields.Integer()
    createdAt = fields.DateTime()
    updatedAt = fields.DateTime()
