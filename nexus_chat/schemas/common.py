"""Field types shared by several areas."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

USERNAME = validate.Regexp(r"^[A-Za-z0-9._]{3,50}$",
                           error="Must be 3-50 characters: letters, digits, '.' and '_'.")
MAX_PASSWORD_BYTES = 72


# Python's str.isspace() characters, which str.strip() removes: JSON Schema's `\\s` differs
# between regex engines, so patterns describing trimmed values spell the class out.
SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = f"[^{SPACE}]"   # a pattern: contains a character that is not white space


class Trimmed(fields.String):
    """A string with surrounding white space removed before validation."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()

    def json_schema_limits(self) -> list[dict[str, str]]:
        """Its Length and Regexp validators as JSON Schema patterns over the value as sent
        (white space around it allowed), for the OpenAPI document."""
        out = []
        for validator in self.validators:
            if isinstance(validator, validate.Length):
                low = validator.equal if validator.equal is not None else validator.min
                high = validator.equal if validator.equal is not None else validator.max
                if low:   # a non-blank character, or two of them far enough apart
                    out.append({"pattern": NOT_BLANK if low == 1
                                else f"{NOT_BLANK}[\\s\\S]{{{low - 2},}}{NOT_BLANK}"})
                if high is not None:
                    inner = f"{NOT_BLANK}?" if high == 1 else \
                        f"(?:{NOT_BLANK}(?:[\\s\\S]{{0,{high - 2}}}{NOT_BLANK})?)?"
                    out.append({"pattern": f"^[{SPACE}]*{inner}[{SPACE}]*$"})
            elif isinstance(validator, validate.Regexp):
                pattern = validator.regex.pattern
                if pattern.startswith("^") and pattern.endswith("$"):
                    out.append({"pattern": f"^[{SPACE}]*(?:{pattern[1:-1]})[{SPACE}]*$"})
        return out


class Email(fields.Email):
    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = value.strip().lower()
        return super()._deserialize(value, attr, data, **kwargs)


def password_field(**kwargs) -> fields.String:
    def check(value: str) -> None:
        size = len(value.encode("utf-8"))
        if len(value) < 6:
            raise ValidationError("Must be at least 6 characters.")
        if size > MAX_PASSWORD_BYTES:
            raise ValidationError(f"Must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8.")
    # JSON Schema counts characters; the byte limit is stated in words and as `x-maxBytes`.
    return fields.String(required=True, validate=check, metadata={
        "minLength": 6, "maxLength": MAX_PASSWORD_BYTES, "x-maxBytes": MAX_PASSWORD_BYTES,
        "description": f"At least 6 characters and at most {MAX_PASSWORD_BYTES} bytes in UTF-8"},
        **kwargs)


def username_field(**kwargs) -> fields.String:
    return Trimmed(validate=USERNAME, **kwargs)


class UserSchema(Schema):
    """User (yourself) — response documentation."""
    id = fields.UUID()
    username = fields.String()
    fullName = fields.String()
    email = fields.Email()
    avatarUrl = fields.String(allow_none=True)
    bio = fields.String(allow_none=True)
    emailVerifiedAt = fields.DateTime(allow_none=True)
    isVerified = fields.Boolean()
    status = fields.String(validate=validate.OneOf(["online", "offline", "away", "busy"]))
    lastSeenAt = fields.DateTime(allow_none=True)
    sendReadReceipts = fields.Boolean(metadata={"description": "false: left out of others' read receipts"})
    createdAt = fields.DateTime()
    updatedAt = fields.DateTime()


class UserPublicSchema(Schema):
    id = fields.UUID()
    username = fields.String()
    fullName = fields.String()
    avatarUrl = fields.String(allow_none=True)
    bio = fields.String(allow_none=True)
    status = fields.String()
    lastSeenAt = fields.DateTime(allow_none=True)


class UserShortSchema(Schema):
    id = fields.UUID()
    username = fields.String()
    fullName = fields.String()
    avatarUrl = fields.String(allow_none=True)
