"""The fixed-window rate limiter, on a clock the test moves."""
from __future__ import annotations

from nexus_chat.ratelimit import Limit, RateLimiter

THREE_A_MINUTE = Limit("test", 3, 60)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_allows_the_count_then_answers_seconds_until_the_window_ends():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    assert [limiter.hit(THREE_A_MINUTE, "1.2.3.4") for _ in range(3)] == [0, 0, 0]
    assert limiter.hit(THREE_A_MINUTE, "1.2.3.4") == 60
    clock.now += 20.5
    assert limiter.hit(THREE_A_MINUTE, "1.2.3.4") == 40, "rounded up: never 'retry now' too early"
    clock.now += 39.0
    assert limiter.hit(THREE_A_MINUTE, "1.2.3.4") == 1, "at least one second"
    clock.now += 0.5
    assert limiter.hit(THREE_A_MINUTE, "1.2.3.4") == 0, "a new window"


def test_keys_and_limits_count_separately():
    limiter = RateLimiter(clock=Clock())
    other = Limit("other", 1, 60)
    for _ in range(3):
        limiter.hit(THREE_A_MINUTE, "a")
    assert limiter.hit(THREE_A_MINUTE, "a") > 0
    assert limiter.hit(THREE_A_MINUTE, "b") == 0
    assert limiter.hit(other, "a") == 0
    assert limiter.hit(other, "a") > 0


def test_exhausted_looks_without_counting():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.hit(THREE_A_MINUTE, "a")
    limiter.hit(THREE_A_MINUTE, "a")
    assert [limiter.exhausted(THREE_A_MINUTE, "a") for _ in range(5)] == [0] * 5
    assert limiter.hit(THREE_A_MINUTE, "a") == 0, "looking did not use up the third request"
    assert limiter.exhausted(THREE_A_MINUTE, "a") == 60
    clock.now += 60
    assert limiter.exhausted(THREE_A_MINUTE, "a") == 0
    assert limiter.exhausted(THREE_A_MINUTE, "never-seen") == 0


def test_disabled_allows_everything():
    limiter = RateLimiter(enabled=False, clock=Clock())
    assert {limiter.hit(THREE_A_MINUTE, "a") for _ in range(100)} == {0}
    assert limiter.exhausted(THREE_A_MINUTE, "a") == 0


def test_finished_windows_are_forgotten_so_many_clients_do_not_grow_memory():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    for n in range(10_000):
        limiter.hit(THREE_A_MINUTE, f"10.0.{n // 256}.{n % 256}")
    assert len(limiter._windows) == 10_000
    clock.now += 61
    limiter.hit(THREE_A_MINUTE, "a")
    assert len(limiter._windows) == 1


def test_exhausted_looks_without_counting():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    assert limiter.exhausted(THREE_A_MINUTE, "ip") == 0
    for _ in range(3):
        assert limiter.exhausted(THREE_A_MINUTE, "ip") == 0, "looking never uses up the limit"
        limiter.hit(THREE_A_MINUTE, "ip")
    assert limiter.exhausted(THREE_A_MINUTE, "ip") == 60
    clock.now += 60
    assert limiter.exhausted(THREE_A_MINUTE, "ip") == 0, "the window ended"


def test_a_window_longer_than_the_built_in_ones_survives_the_purge():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    long = Limit("long", 1, 300)
    limiter.hit(long, "ip")
    clock.now += 120     # past the one-minute purge
    limiter.hit(THREE_A_MINUTE, "other")
    assert limiter.exhausted(long, "ip") == 180
