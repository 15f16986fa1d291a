"""Contacts (docs/api.md#contacts)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from .common import Trimmed, UserPublicSchema


class ContactPath(Schema):
    id = fields.UUID(required=True)


class CreateContactBody(Schema):
    contactUserId = fields.UUID(required=True)
    alias = Trimmed(validate=validate.Length(1, 100),
                    metadata={"description": "Defaults to the user's full name"})


class UpdateContactBody(Schema):
    alias = Trimmed(required=True, validate=validate.Length(1, 100))


class ContactSchema(Schema):
    id = fields.UUID()
    alias = fields.String()
    userId = fields.UUID(metadata={"description": "The owner's id: the user who saved the contact "
                                                  "(the other user is `contactUser`)"})
    contactUser = fields.Nested(UserPublicSchema)
    createdAt = fields.DateTime()
    updatedAt = fields.DateTime()
