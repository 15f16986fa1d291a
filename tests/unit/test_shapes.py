"""Every shape function's output is exactly what the OpenAPI document says the API answers:
each documented property present, nothing undocumented, each value of the documented type and
format (ids are UUIDs, dates `…T…​.mmmZ`). Rows are built as the queries return them (UUIDs as
text, DATETIME(3) as naive datetimes or as text, TINYINT flags as ints)."""
from __future__ import annotations

import copy
import datetime as dt
import re
import uuid

import jsonschema
import pytest

from nexus_chat.shapes import message_shape, shape_messages
from nexus_chat.services.contacts import contact_shape
from nexus_chat.services.groups import group_shape, member_shape
from nexus_chat.services.message_details import reaction_shape, reply_shape
from nexus_chat.services.search import hit_shape
from nexus_chat.services.stories import story_shape
from nexus_chat.shapes import user_public, user_self, user_short

WHEN = dt.datetime(2026, 1, 2, 9, 30, 0, 123000)
WHEN_TEXT = "2026-01-02 09:30:00.123"   # hot queries select dates as text


def an_id() -> str:
    return str(uuid.uuid4())


def user_row(prefix: str = "", **changes) -> dict:
    row = {"id": an_id(), "username": "ada_l", "full_name": "Ada Lovelace", "email": "ada@example.com",
           "avatar_url": "/uploads/avatars/a.png", "bio": "", "email_verified_at": WHEN, "status": "online",
           "last_seen_at": None, "send_read_receipts": 1, "created_at": WHEN, "updated_at": WHEN}
    row.update(changes)
    return {f"{prefix}{key}": value for key, value in row.items()}


def message_row(**changes) -> dict:
    row = {"id": an_id(), "content": "hello", "conversation_id": an_id(), "group_id": None, "is_read": 0,
           "read_at": None, "client_message_id": "c-1", "created_at": WHEN_TEXT, "updated_at": WHEN_TEXT,
           "edited_at": None, "deleted_at": None, "deleted_by": None, **user_row("sender_")}
    row.update(changes)
    return row


def strict(components: dict) -> dict:
    """The components with every documented property required, so a missing one fails too."""
    components = copy.deepcopy(components)

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["required"] = list(node["properties"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(components)
    return components


FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time")
def _our_dates(value: object) -> bool:
    return not isinstance(value, str) or re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", value) is not None


@FORMATS.checks("uuid")
def _uuids(value: object) -> bool:
    return not isinstance(value, str) or str(uuid.UUID(value)) == value


def assert_documented(document: dict, component: str, value: object) -> None:
    schema = {"$ref": f"#/components/schemas/{component}", "components": strict(document["components"])}
    errors = sorted(jsonschema.Draft202012Validator(schema, format_checker=FORMATS).iter_errors(value),
                    key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{component} at {list(e.absolute_path)}: {e.message}" for e in errors)


SHAPES = {
    "user self": ("User", lambda: user_self(user_row())),
    "user self, unverified, no avatar": ("User", lambda: user_self(user_row(
        email_verified_at=None, avatar_url=None, bio=None, send_read_receipts=0, last_seen_at=WHEN))),
    "user public": ("UserPublic", lambda: user_public(user_row("u_"), "u_")),
    "user short": ("UserShort", lambda: user_short(user_row("owner_"), "owner_")),
    "direct message": ("Message", lambda: message_shape(message_row())),
    "group message, read, edited": ("Message", lambda: message_shape(message_row(
        conversation_id=None, group_id=an_id(), is_read=1, read_at=WHEN, edited_at=WHEN, client_message_id=None))),
    "deleted message": ("Message", lambda: message_shape(message_row(
        content="", deleted_at=WHEN, deleted_by=an_id()))),
    "page of messages": ("Message", lambda: shape_messages([message_row(), message_row()])[1]),
    "group": ("Group", lambda: group_shape({
        "id": an_id(), "name": "Team", "description": None, "icon_url": "", "members_count": 3,
        "my_role": "owner", "created_at": WHEN, "updated_at": WHEN, **user_row("owner_")})),
    "member": ("Member", lambda: member_shape({"role": "admin", "joined_at": WHEN, **user_row("user_")})),
    "contact": ("Contact", lambda: contact_shape({
        "id": an_id(), "alias": "Ada (work)", "owner_id": an_id(), "created_at": WHEN, "updated_at": WHEN,
        **user_row("cu_")})),
    "story": ("Story", lambda: story_shape({
        "id": an_id(), "image_url": "/uploads/stories/s.jpg", "video_url": None, "caption": "hi",
        "expires_at": WHEN, "created_at": WHEN, "updated_at": WHEN, **user_row("user_")}, alias="Ada")),
    "reaction": ("Reaction", lambda: reaction_shape("👍", 2, f"{an_id()},{an_id()}", True)),
    "reply": ("ReplyTo", lambda: reply_shape({"id": an_id(), "snippet": None, "deleted": 0,
                                             **user_row("sender_")})),
    "search hit in a conversation": ("SearchHit", lambda: hit_shape({
        **message_row(content="the quick brown fox"), "group_name": None, "group_icon_url": None,
        **user_row("partner_")}, ("quick",))),
}


@pytest.mark.parametrize("case", sorted(SHAPES))
def test_shape_is_the_documented_response(document, case):
    component, build = SHAPES[case]
    assert_documented(document, component, build())


def test_an_undocumented_or_missing_field_fails(document):
    """The check itself: a shape that grows or loses a field does not pass."""
    shaped = user_public(user_row("u_"), "u_")
    with pytest.raises(AssertionError, match="Additional properties"):
        assert_documented(document, "UserPublic", {**shaped, "email": "leak@example.com"})
    del shaped["status"]
    with pytest.raises(AssertionError, match="'status' is a required property"):
        assert_documented(document, "UserPublic", shaped)
