"""GET /api/chat/events: the query and the page it answers."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from ..offsets import Position


class After(fields.Field):
    """An offset of the REST catch-up (digits) or of the socket (a position, offsets.py)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int | Position:
        digits = isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19
        if digits and int(value) < 2 ** 63:
            return int(value)
        position = Position.parse(value)
        if position is None:
            raise ValidationError("Not an offset: use nextAfter, or the last offset an event carried")
        return position


class EventsQuery(Schema):
    after = After(load_default=None, allow_none=True,
                  metadata={"type": "string",
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
