"""Rules that REST and Socket.IO share (issue 10 item 2): each lives once and both sides
call it. Pure functions: no server needed."""
from __future__ import annotations

import pymysql
import pytest

from nexus_chat import db
from nexus_chat.errors import ApiError, db_transient_error, error_body
from nexus_chat.rules import exactly_one_problem, require_exactly_one
from nexus_chat.schemas.chat import MessagesQuery
from nexus_chat.schemas.loading import load_schema
from nexus_chat.tokens import bearer_token, token_value


@pytest.mark.parametrize("header, token", [
    ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("  Bearer abc", "abc"), ("Basic abc", None),
    ("Bearer", None), ("Bearer   ", None), ("abc", None), ("", None), (None, None)])
def test_bearer_header(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize("value, token", [
    ("abc", "abc"), (" Bearer abc ", "abc"), ("", None), ("  ", None), (None, None), (42, None), ({"t": 1}, None)])
def test_token_value(value, token):
    assert token_value(value) == token


def test_exactly_one_of_two_targets():
    assert exactly_one_problem(recipientId="a", groupId=None) is None
    assert exactly_one_problem(recipientId=None, groupId="g") is None
    message = "Exactly one of recipientId or groupId is required."
    assert exactly_one_problem(recipientId=None, groupId=None) == message
    assert exactly_one_problem(recipientId="a", groupId="g") == message
    with pytest.raises(ApiError) as raised:
        require_exactly_one(conversationId=None, groupId=None)
    assert (raised.value.status, raised.value.errors) == (
        400, ["target: Exactly one of conversationId or groupId is required."])
    # The schema (REST query and the getMessages event) says the same.
    with pytest.raises(ApiError) as raised:
        load_schema(MessagesQuery, {})
    assert raised.value.errors == [f"target: {message}"]


def test_schema_errors_are_formatted_once_for_both_sides():
    with pytest.raises(ApiError) as raised:
        load_schema(MessagesQuery, {"recipientId": "nope", "limit": 0, "extra": 1})
    assert raised.value.message == "Validation failed"
    assert sorted(raised.value.errors) == sorted([
        "recipientId: Not a valid UUID.", "limit: Must be greater than or equal to 1 and less than or equal to 100.",
        "extra: Unknown field."])


def test_error_body_is_the_envelope_of_both_sides():
    assert error_body(404, "Gone") == {"success": False, "statusCode": 404, "error": "Not Found", "message": "Gone"}
    assert error_body(400, "Validation failed", ["a: b"], path="/x") == {
        "success": False, "statusCode": 400, "error": "Bad Request", "message": "Validation failed",
        "path": "/x", "errors": ["a: b"]}


@pytest.mark.parametrize("exc, duplicate, missing_parent, contention, unreachable", [
    (pymysql.err.IntegrityError(1062, "Duplicate entry"), True, False, False, False),
    (pymysql.err.IntegrityError(1452, "Cannot add or update a child row"), False, True, False, False),
    (pymysql.err.OperationalError(1213, "Deadlock found"), False, False, True, False),
    (pymysql.err.OperationalError(1205, "Lock wait timeout"), False, False, True, False),
    (pymysql.err.OperationalError(2003, "Can't connect"), False, False, False, True),
    (pymysql.err.InterfaceError(0, ""), False, False, False, True),
    (pymysql.err.OperationalError(1054, "Unknown column"), False, False, False, False),
    (ValueError(1062), False, False, False, False),
])
def test_mysql_error_codes(exc, duplicate, missing_parent, contention, unreachable):
    assert db.is_duplicate_key(exc) is duplicate
    assert db.is_missing_parent(exc) is missing_parent
    assert db.is_contention(exc) is contention
    assert db.db_unreachable(exc) is unreachable
    mapped = db_transient_error(exc)   # REST answers and socket acks both use this 503
    if contention or unreachable:
        assert mapped.status == 503 and mapped.headers == {"Retry-After": "1"}
    else:
        assert mapped is None


def test_an_api_error_raised_in_a_worker_process_keeps_its_status_and_errors():
    # Upload checks run in media worker processes; their refusals cross back pickled.
    import pickle
    error = ApiError(400, "Validation failed", ["avatar: Must be a JPEG, PNG or WEBP image."], {"X-A": "1"})
    back = pickle.loads(pickle.dumps(error))
    assert (back.status, back.message, back.errors, back.headers) == (400, "Validation failed",
                                                                      ["avatar: Must be a JPEG, PNG or WEBP image."],
                                                                      {"X-A": "1"})
    assert isinstance(back, ApiError) and str(back) == "Validation failed"
