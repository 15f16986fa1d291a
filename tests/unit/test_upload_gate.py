"""spool.UploadGate: uploads at once per account and in all (429 past either)."""
from __future__ import annotations

import pytest

from nexus_chat.errors import ApiError
from nexus_chat.spool import UploadGate


def test_caps_per_user_and_in_all_and_releases_once():
    gate = UploadGate(per_user=2, total=3)
    a1, a2 = gate.enter("a"), gate.enter("a")
    with pytest.raises(ApiError) as refused:
        gate.enter("a")
    assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "1"
    b1 = gate.enter("b")
    with pytest.raises(ApiError):
        gate.enter("c")            # the total
    a1()
    a1()                           # a second release changes nothing
    assert gate.count == 2 and gate.active == {"a": 1, "b": 1}
    c1 = gate.enter("c")
    for release in (a2, b1, c1):
        release()
    assert gate.count == 0 and gate.active == {}
