"""Fixed-window rate limits in this process's memory (one process serves everything, so memory
is the truth). Several processes count in Redis instead (cluster/rate_limits.py), through the
same calls: ``count``, ``wait_for`` (awaited) and ``hit_now`` (the synchronous handshake)."""
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


def failed_logins(settings) -> Limit:
    """Failed logins per client IP, whatever the e-mail (password spraying)."""
    return Limit("login-failed", settings.auth_login_failures_per_ip, settings.auth_login_failures_window_s)


class RateLimiter:
    def __init__(self, enabled: bool = True, clock=time.monotonic) -> None:
        self.enabled = enabled
        self._clock = clock
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        self._last_purge = clock()
        self._longest = max(l.window_s for l in (LOGIN, REGISTER, MAIL_REQUEST, DEFAULT))

    async def count(self, limit: Limit, key: str) -> int:
        """Count one request; 0 if allowed, else seconds until the window resets."""
        return self.hit(limit, key)

    async def wait_for(self, limit: Limit, key: str) -> int:
        """Without counting: 0 if another hit would be allowed, else seconds until it is."""
        return self.exhausted(limit, key)

    def hit_now(self, limit: Limit, key: str) -> int:
        """``count`` for a caller that cannot wait."""
        return self.hit(limit, key)

    def hit(self, limit: Limit, key: str) -> int:
        """Count one request; return 0 if allowed, else seconds until the window resets."""
        if not self.enabled:
            return 0
        now = self._clock()
        self._purge(now)
        self._longest = max(self._longest, limit.window_s)
        slot = (limit.name, key)
        started, count = self._windows.get(slot, (now, 0))
        if now - started >= limit.window_s:
            started, count = now, 0
        count += 1
        self._windows[slot] = (started, count)
        if count > limit.count:
            return max(1, int(started + limit.window_s - now + 0.999))
        return 0

    def exhausted(self, limit: Limit, key: str) -> int:
        """Without counting: 0 if another hit would be allowed, else seconds until it is."""
        if not self.enabled:
            return 0
        now = self._clock()
        started, count = self._windows.get((limit.name, key), (now, 0))
        if now - started >= limit.window_s or count < limit.count:
            return 0
        return max(1, int(started + limit.window_s - now + 0.999))

    def _purge(self, now: float) -> None:
        # Drop finished windows once a minute so idle keys do not accumulate.
        if now - self._last_purge < 60:
            return
        self._last_purge = now
        self._windows = {k: v for k, v in self._windows.items() if now - v[0] < self._longest}
