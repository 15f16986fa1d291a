"""Groups (docs/api.md#groups)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from .common import Trimmed, UserShortSchema

ROLES = ("owner", "admin", "member")


class GroupPath(Schema):
    groupId = fields.UUID(required=True)


class MemberPath(Schema):
    groupId = fields.UUID(required=True)
    memberId = fields.UUID(required=True)


class CreateGroupBody(Schema):
    name = Trimmed(required=True, validate=validate.Length(3, 100))
    description = Trimmed(allow_none=True, validate=validate.Length(3, 255))


class UpdateGroupBody(Schema):
    name = Trimmed(validate=validate.Length(3, 100))
    description = Trimmed(allow_none=True, validate=validate.Length(3, 255))


class InviteBody(Schema):
    groupId = fields.UUID(required=True)
    memberIds = fields.List(fields.UUID(), required=True, validate=validate.Length(1, 100))


class RoleBody(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class GroupSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    description = fields.String(allow_none=True)
    iconUrl = fields.String(allow_none=True)
    membersCount = fields.Integer()
    owner = fields.Nested(UserShortSchema)
    myRole = fields.String(allow_none=True, validate=validate.OneOf(ROLES))
    createdAt = fields.DateTime()
    updatedAt = fields.DateTime()


class InviteResultSchema(Schema):
    count = fields.Integer(metadata={"description": "Members added"})
    skippedCount = fields.Integer(metadata={"description": "Already members"})


class MemberSchema(Schema):
    role = fields.String(validate=validate.OneOf(ROLES))
    joinedAt = fields.DateTime()
    user = fields.Nested(UserShortSchema)
