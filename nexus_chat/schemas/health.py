"""GET /api/health."""
from __future__ import annotations

from marshmallow import Schema, fields, validate


class HealthSchema(Schema):
    """The process answers and its database answers (otherwise the route answers 503)."""
    status = fields.String(required=True, validate=validate.OneOf(["ok"]))
    database = fields.String(required=True, validate=validate.OneOf(["up"]))
