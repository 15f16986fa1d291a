"""In-memory fixed-window rate limits (one process serves everything, so memory is the truth)."""
from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    name: str
    count: int
    window_s: int


# docs/api.md#limits
LOGIN = Limit("login", 5, 60)
REGISTER = Limit("register", 3, 60)
MAIL_REQUEST = Limit("mail", 2, 60)        # forgot-password and resend-verification
DEFAULT = Limit("default", 1000, 60)


class RateLimiter:
    def __init__(self, enabled: bool = True, clock=time.monotonic) -> None:
        self.enabled = enabled
        self._clock = clock
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        self._last_purge = clock()

    def hit(self, limit: Limit, key: str) -> int:
        """Count one request; return 0 if allowed, else seconds until the window resets."""
        if not self.enabled:
            return 0
        now = self._clock()
        self._purge(now)
        slot = (limit.name, key)
        started, count = self._windows.get(slot, (now, 0))
        if now - started >= limit.window_s:
            started, count = now, 0
        count += 1
        self._windows[slot] = (started, count)
        if count > limit.count:
            return max(1, int(started + limit.window_s - now + 0.999))
        return 0

    def _purge(self, now: float) -> None:
        # Drop finished windows once a minute so idle keys do not accumulate.
        if now - self._last_purge < 60:
            return
        self._last_purge = now
        longest = max(l.window_s for l in (LOGIN, REGISTER, MAIL_REQUEST, DEFAULT))
        self._windows = {k: v for k, v in self._windows.items() if now - v[0] < longest}
