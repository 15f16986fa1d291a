from __future__ import annotations

from marshmallow import Schema, fields, validate

from .common import Email, Trimmed, password_field, username_field


class RegisterBody(Schema):
    username = username_field(required=True)
    fullName = Trimmed(required=True, validate=validate.Length(1, 100))
    email = Email(required=True, validate=validate.Length(max=255))
    password = password_field()


class LoginBody(Schema):
    email = Email(required=True)
    password = fields.String(required=True, validate=validate.Length(1, 1024))


class TokensSchema(Schema):
    accessToken = fields.String()
    refreshToken = fields.String()
    userId = fields.UUID()
    expiresIn = fields.Integer(metadata={"description": "Access token lifetime in seconds"})


class RefreshBody(Schema):
    refreshToken = fields.String(required=True, validate=validate.Length(1, 4096))
    userId = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))


class EmailBody(Schema):
    email = Email(required=True)


class ResetPasswordBody(Schema):
    token = fields.String(required=True, validate=validate.Length(1, 4096))
    newPassword = password_field()


class ChangePasswordBody(Schema):
    oldPassword = fields.String(required=True, validate=validate.Length(1, 1024))
    newPassword = password_field()


class DeleteAccountBody(Schema):
    password = fields.String(required=True, validate=validate.Length(1, 1024))


class VerifyEmailQuery(Schema):
    token = fields.String(load_default="")
