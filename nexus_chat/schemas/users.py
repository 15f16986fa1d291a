"""Users (docs/api.md#users): search and profile update."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, pre_load, validate

from .common import Trimmed, UserPublicSchema, username_field


class SearchQuery(Schema):
    q = Trimmed(required=True, validate=validate.Length(3, 100),
                metadata={"description": "At least 3 characters; matches username or full name"})


class ProfileBody(Schema):
    """JSON or multipart fields; an empty `bio` clears it."""
    username = username_field()
    fullName = Trimmed(validate=validate.Length(1, 100))
    bio = fields.String(allow_none=True, validate=validate.Length(max=500))
    sendReadReceipts = fields.Boolean(metadata={"description": "false: others' read receipts leave you out"})

    @pre_load
    def _empty_bio_is_null(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("bio"), str) and not data["bio"].strip():
            data = {**data, "bio": None}
        return data


class UserSearchResultSchema(UserPublicSchema):
    isVerified = fields.Boolean()
    isContact = fields.Boolean()

