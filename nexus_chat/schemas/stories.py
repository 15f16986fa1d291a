"""Stories (docs/api.md#stories)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from .common import NOT_BLANK, UserShortSchema


class StoryPath(Schema):
    id = fields.UUID(required=True)


class StoryIdPath(Schema):
    storyId = fields.UUID(required=True)


class CreateStoryBody(Schema):
    caption = fields.String(allow_none=True, validate=validate.Length(max=255))

    # services.stories.create: a caption that is not blank, an image or a video; not both files.
    RULE = "A story needs a caption that is not blank, an image or a video (one file at most)."
    JSON_SCHEMA = {"allOf": [{"required": ["caption"],
                              "properties": {"caption": {"type": "string", "pattern": NOT_BLANK}}}]}
    FORM_JSON_SCHEMA = {"anyOf": [
        {"required": ["caption"], "properties": {"caption": {"type": "string", "pattern": NOT_BLANK}}},
        {"required": ["image"]}, {"required": ["video"]}]}


class StorySchema(Schema):
    id = fields.UUID()
    imageUrl = fields.String(allow_none=True)
    videoUrl = fields.String(allow_none=True)
    caption = fields.String(allow_none=True)
    expiresAt = fields.DateTime()
    createdAt = fields.DateTime()
    updatedAt = fields.DateTime()
    user = fields.Nested(UserShortSchema)


class OwnStorySchema(StorySchema):
    viewsCount = fields.Integer()


class FeedStorySchema(StorySchema):
    seen = fields.Boolean(metadata={"description": "Whether you have seen it"})


class ViewerSchema(Schema):
    seenAt = fields.DateTime()
    user = fields.Nested(UserShortSchema)
