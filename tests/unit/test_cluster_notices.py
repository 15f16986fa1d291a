"""The notices processes exchange through Redis (nexus_chat/cluster/sync.py): every membership
record survives the trip, and a malformed notice (Redis is shared infrastructure; a buggy or
foreign publisher) changes nothing instead of raising."""
from __future__ import annotations

import orjson
import pytest

from nexus_chat.cluster.sync import notice_of, record_of
from nexus_chat.events import Audience, Emit, GroupDeleted, MembershipChange, UserDeleted


@pytest.mark.parametrize("record", [
    MembershipChange("g1", ("u1", "u2"), True),
    MembershipChange("g1", ("u3",), False),
    GroupDeleted("g2"),
    UserDeleted("u4"),
])
def test_membership_records_travel_as_json_and_come_back_equal(record):
    kind, fields = notice_of(record)
    received = orjson.loads(orjson.dumps({"from": "abc123", "kind": kind, **fields}))
    assert record_of(received["kind"], received) == record


def test_events_for_clients_are_not_notices():
    assert notice_of(Emit("message", {"id": "m"}, Audience.to_user("u1"))) is None


@pytest.mark.parametrize("kind, notice", [
    ("membership", {"group": "g1", "users": 5, "joined": True}),
    ("membership", {"group": "g1", "joined": True}),
    ("group-deleted", {}),
    ("user-deleted", {"user": None}),
    ("membership", {"group": "g1", "users": ["u1", 2], "joined": True}),
    ("membership", {"group": ["g1"], "users": ["u1"], "joined": "yes"}),
    ("something-else", {"user": "u1"}),
])
def test_a_malformed_notice_is_ignored(kind, notice):
    assert record_of(kind, notice) is None
