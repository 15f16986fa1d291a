"""GET /api/chat/events: the query and the page it answers."""
from __future__ import annotations

from marshmallow import Schema, fields, validate


class EventsQuery(Schema):
    after = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 2 ** 63 - 1),
                           metadata={"description": "The last offset you have (from an event on the "
                                     "socket, or nextAfter); omit it to learn where to start"})
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


class LoggedEventSchema(Schema):
    offset = fields.String(metadata={"description": "Position in the event log (digits)"})
    event = fields.String(metadata={"description": "The Socket.IO event name, e.g. message"})
    data = fields.Dict(metadata={"description": "The event's payload, as the socket carries it"})
    createdAt = fields.DateTime()


class EventsPageSchema(Schema):
    events = fields.List(fields.Nested(LoggedEventSchema))
    hasMore = fields.Boolean()
    nextAfter = fields.String(metadata={"description": "Pass as `after` for what follows"})
