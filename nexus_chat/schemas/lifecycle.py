"""Schemas of a message's life after it is sent: edits, deletes, reactions, replies, read
pointers, receipts and the inbox. Used by the REST ops and to validate the /chat events."""
from __future__ import annotations

import regex
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..rules import exactly_one_problem
from .chat import MAX_CONTENT, MessageSchema, UuidString
from .common import Trimmed, UserPublicSchema

MAX_SHORTCODE = 32

_ONE_GRAPHEME = regex.compile(r"\X")
# The shapes an emoji takes: a pictograph with at most one skin tone or presentation
# selector, such pictographs joined by ZWJ, a subdivision flag's tags, a pair of regional
# indicators, a keycap. Anything more (modifiers or selectors stacked on 👍) draws like 👍
# but would count as another emoji.
_ELEMENT = r"\p{Extended_Pictographic}(?:\p{Emoji_Modifier}|\uFE0F)?"
_EMOJI = regex.compile(
    rf"{_ELEMENT}(?:\u200D{_ELEMENT})*(?:[\U000E0020-\U000E007E]+\U000E007F)?"
    r"|\p{Regional_Indicator}{2}"
    r"|[0-9#*]\uFE0F?\u20E3")
_SHORTCODE = regex.compile(r":[a-z0-9_+\-]+:")


def is_reaction_emoji(value: str) -> bool:
    """One emoji (a single grapheme cluster that is pictographic, a flag or a keycap) or a
    `:shortcode:` of at most 32 characters."""
    if value.startswith(":"):
        return len(value) <= MAX_SHORTCODE and _SHORTCODE.fullmatch(value) is not None
    if not value or len(value) > 16 or value.endswith("\u200d") or _ONE_GRAPHEME.fullmatch(value) is None:
        return False
    return _EMOJI.fullmatch(value) is not None


class Emoji(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not is_reaction_emoji(text):
            raise ValidationError(f"Must be one emoji or a :shortcode: of at most {MAX_SHORTCODE} characters.")
        return text


def _content() -> Trimmed:
    return Trimmed(required=True, validate=validate.Length(1, MAX_CONTENT))


# ---- input ---------------------------------------------------------------------------------
class MessagePath(Schema):
    messageId = UuidString(required=True)


class ReactionPath(MessagePath):
    emoji = Emoji(required=True, metadata={
        "minLength": 1, "maxLength": MAX_SHORTCODE,
        "description": "One emoji (a single pictographic grapheme, a flag or a keycap) or a "
                       f"`:shortcode:` of a-z, 0-9, `_`, `+`, `-`, at most {MAX_SHORTCODE} characters"})


class EditBody(Schema):
    """PATCH /chat/messages/:id."""
    content = _content()


class EditMessagePayload(EditBody):
    """The `editMessage` event."""
    messageId = UuidString(required=True)


class DeleteMessagePayload(Schema):
    """The `deleteMessage` event."""
    messageId = UuidString(required=True)


class ReactPayload(Schema):
    """The `reactToMessage` event."""
    messageId = UuidString(required=True)
    emoji = Emoji(required=True)
    react = fields.Boolean(required=True)


class ReadPayload(Schema):
    """The `markConversationAsRead` event and POST /chat/read: a conversation or a group,
    up to a message (default: the newest). ``recipientId`` is the older form's check."""
    conversationId = UuidString(load_default=None, allow_none=True)
    groupId = UuidString(load_default=None, allow_none=True)
    messageId = UuidString(load_default=None, allow_none=True)
    recipientId = UuidString(load_default=None, allow_none=True)

    @validates_schema
    def _one_chat(self, data, **kwargs):
        problem = exactly_one_problem(conversationId=data.get("conversationId"), groupId=data.get("groupId"))
        if problem is not None:
            raise ValidationError(problem, "target")


class InboxQuery(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))
    cursor = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 100),
                           metadata={"description": "`nextCursor` of the previous page"})


# ---- output (documentation) ----------------------------------------------------------------
class EditVersionSchema(Schema):
    content = fields.String()
    writtenAt = fields.DateTime()
    replacedAt = fields.DateTime(allow_none=True, metadata={"description": "null: the current version"})


class ReceiptSchema(Schema):
    user = fields.Nested(UserPublicSchema)
    readAt = fields.DateTime()


class ReceiptsSchema(Schema):
    readBy = fields.List(fields.Nested(ReceiptSchema))
    unreadCount = fields.Integer()


class ReadStateSchema(Schema):
    conversationId = fields.UUID(allow_none=True)
    groupId = fields.UUID(allow_none=True)
    lastReadMessageId = fields.UUID(allow_none=True)
    readAt = fields.DateTime(allow_none=True)


class InboxGroupSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    iconUrl = fields.String(allow_none=True)


class InboxEntrySchema(Schema):
    kind = fields.String(validate=validate.OneOf(["direct", "group"]))
    id = fields.UUID(metadata={"description": "The conversation's or the group's id"})
    partner = fields.Nested(UserPublicSchema, allow_none=True)
    group = fields.Nested(InboxGroupSchema, allow_none=True)
    lastMessage = fields.Nested(MessageSchema, allow_none=True)
    unreadCount = fields.Integer()
    lastReadMessageId = fields.UUID(allow_none=True)


class InboxSchema(Schema):
    items = fields.List(fields.Nested(InboxEntrySchema))
    nextCursor = fields.String(allow_none=True)
