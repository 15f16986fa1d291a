"""Attachment schemas: the upload form, the Attachment shape, the signed-URL query."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

KINDS = ("image", "video", "file")


class UploadBody(Schema):
    """POST /api/chat/attachments: the form has only the `file` part."""

    FORM_JSON_SCHEMA = {"required": ["file"]}   # for the OpenAPI document (handler: "Missing file")


class AttachmentPath(Schema):
    attachmentId = fields.UUID(required=True,
                               metadata={"description": "Another id answers 404, like an unknown one"})


class SignedUrlQuery(Schema):
    expires = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 2 ** 40),
                             metadata={"description": "Signed URL: expiry (Unix seconds)"})
    sig = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 128),
                        metadata={"description": "Signed URL: signature"})


class AttachmentSchema(Schema):
    """Attachment — the same shape in a Message and as the upload's answer."""
    id = fields.UUID()
    kind = fields.String(validate=validate.OneOf(KINDS))
    mimeType = fields.String()
    size = fields.Integer(metadata={"description": "Bytes, as stored (images without metadata)"})
    name = fields.String(metadata={"description": "The uploader's file name, for display only"})
    width = fields.Integer(metadata={"description": "Images only"})
    height = fields.Integer(metadata={"description": "Images only"})
    url = fields.String(metadata={"description": "Signed URL, valid without a token until it expires"})
    thumbnailUrl = fields.String(metadata={"description": "Images only: signed URL of a WEBP "
                                           "thumbnail, longest side 320 px"})
