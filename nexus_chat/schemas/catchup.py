"""GET /api/chat/events: the query and the page it answers."""
from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from ..offsets import MAX_LENGTH, PATTERN, Position


NOT_AN_OFFSET = "Not an offset: use nextAfter, or the last offset an event carried"
OFFSET = re.compile(rf"[0-9]{{1,18}}|{PATTERN}")


class After(fields.String):
    """An offset of the REST catch-up (digits) or of the socket (a position, offsets.py)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int | Position:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > MAX_LENGTH or not OFFSET.fullmatch(text):
            raise ValidationError(NOT_AN_OFFSET)
        if text.isdigit():
            return int(text)
        position = Position.parse(text)
        if position is None:
            raise ValidationError(NOT_AN_OFFSET)
        return position


class EventsQuery(Schema):
    after = After(load_default=None, allow_none=True,
                  metadata={"pattern": f"^(?:{OFFSET.pattern})$",   # bounds the length too
                            "description": "The last offset you have (the last argument of an event on "
                            "the socket, or nextAfter); omit it to learn where to start"})
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


class LoggedEventSchema(Schema):
    offset = fields.String(metadata={"description": "Position in the event log: digits, or (when "
                                     "`after` was a socket's offset) a socket offset"})
    event = fields.String(metadata={"description": "The Socket.IO event name, e.g. message"})
    data = fields.Dict(metadata={"description": "The event's payload, as the socket carries it"})
    createdAt = fields.DateTime()


class EventsPageSchema(Schema):
    events = fields.List(fields.Nested(LoggedEventSchema))
    hasMore = fields.Boolean()
    nextAfter = fields.String(metadata={"description": "Pass as `after` for what follows"})
