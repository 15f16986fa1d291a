"""The in-memory set of revoked sessions (nexus_chat/revocation.py), on a clock the test moves."""
from __future__ import annotations

from nexus_chat.revocation import RevokedSessions


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_is_refused_for_one_access_lifetime_after_its_revocation():
    clock = Clock()
    revoked = RevokedSessions(access_ttl_s=3600, clock=clock)
    revoked.add(["s1"])
    assert revoked.contains("s1") and not revoked.contains("s2")
    clock.now += 3599
    assert revoked.contains("s1"), "an access token issued just before may still be alive"
    clock.now += 2
    assert not revoked.contains("s1"), "every token of it has expired: forgotten"
    assert len(revoked) == 0


def test_listeners_hear_each_session_once_and_old_revocations_are_ignored():
    clock = Clock()
    revoked = RevokedSessions(access_ttl_s=60, clock=clock)
    heard: list[list[str]] = []
    revoked.listeners.append(heard.append)
    assert revoked.add(["a", "b"]) == ["a", "b"]
    assert revoked.add(["b", "c"], revoked_at=clock.now - 10) == ["c"], "b was known already"
    assert heard == [["a", "b"], ["c"]]
    # found in the database long after: its tokens expired, nothing to refuse or disconnect
    assert revoked.add(["old"], revoked_at=clock.now - 61) == []
    assert not revoked.contains("old") and heard == [["a", "b"], ["c"]]


def test_a_failing_listener_does_not_stop_the_revocation():
    revoked = RevokedSessions(access_ttl_s=60)

    def broken(ids):
        raise RuntimeError("socket layer trouble")

    revoked.listeners.append(broken)
    assert revoked.add(["x"]) == ["x"]
    assert revoked.contains("x")
