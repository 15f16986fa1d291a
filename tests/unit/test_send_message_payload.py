"""`sendMessage` payloads: the shortcut of SendMessagePayload (``accept_plain``) returns exactly
what marshmallow's ``load`` returns, for every payload it accepts, and leaves the rest (and so
every error message) to marshmallow."""
from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from nexus_chat.errors import ApiError
from nexus_chat.schemas.chat import MAX_CONTENT, SendMessagePayload
from nexus_chat.schemas.loading import load_schema

ID = str(uuid.UUID(int=7))
OTHER = "0c2b5d7e-1f3a-4b6c-8d9e-a0b1c2d3e4f5"


def marshmallow_load(data):
    try:
        return SendMessagePayload().load(data)
    except ValidationError:
        return None


ids = st.sampled_from([ID, OTHER, ID.upper(), OTHER.replace("-", ""), "{" + ID + "}", "nope", "", None, 7, [ID]])
values = st.one_of(ids, st.text(max_size=8), st.sampled_from([" hi ", "\n", "x" * MAX_CONTENT, " " + "x" * MAX_CONTENT + " ",
                                                                "x" * (MAX_CONTENT + 1), "x" * 64, "x" * 65]),
                   st.lists(ids, max_size=11), st.booleans(), st.none(), st.integers())
payloads = st.dictionaries(st.sampled_from(["content", "recipientId", "groupId", "clientMessageId", "replyToId",
                                            "attachmentIds", "extra"]), values, max_size=6)


@settings(max_examples=3000, deadline=None)
@given(payloads)
def test_shortcut_agrees_with_marshmallow(data):
    accepted = SendMessagePayload.accept_plain(data)
    if accepted is not None:
        assert accepted == marshmallow_load(data)


@pytest.mark.parametrize("data", [
    {"recipientId": ID, "content": "hello"},
    {"groupId": ID, "content": "  hi  ", "clientMessageId": "c-1", "replyToId": OTHER},
    {"recipientId": ID, "content": "", "attachmentIds": [OTHER]},
    {"recipientId": ID, "content": "x" * MAX_CONTENT, "clientMessageId": None, "replyToId": None, "attachmentIds": []},
])
def test_usual_payloads_take_the_shortcut(data):
    assert SendMessagePayload.accept_plain(data) == marshmallow_load(data) is not None


@pytest.mark.parametrize("data, errors", [
    ({"recipientId": ID, "content": "   "}, ["content: Shorter than minimum length 1."]),
    ({"recipientId": ID, "groupId": OTHER, "content": "x"}, ["target: Exactly one of recipientId or groupId is required."]),
    ({"recipientId": "nope", "content": "x"}, ["recipientId: Not a valid UUID."]),
    ({"recipientId": ID, "content": "x", "color": "red"}, ["color: Unknown field."]),
])
def test_errors_are_marshmallows(data, errors):
    assert SendMessagePayload.accept_plain(data) is None
    with pytest.raises(ApiError) as caught:
        load_schema(SendMessagePayload, data)
    assert caught.value.errors == errors


def test_non_canonical_ids_are_normalised_by_marshmallow():
    loaded = load_schema(SendMessagePayload, {"recipientId": ID.upper(), "content": "x"})
    assert loaded["recipientId"] == ID
