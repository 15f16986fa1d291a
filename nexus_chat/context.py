"""What the application owns, handed to handlers, services and the Socket.IO layer."""
from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .db import Database
from .passwords import PasswordHasher
from .ratelimit import RateLimiter
from .revocation import RevokedSessions
from .search_index import FulltextIndex, MessageIndex
from .tokens import TokenService


class RevokedUsers:
    """Users deleted while their access tokens may still be unexpired (at most one access
    lifetime). Checked on every authenticated request without a database round trip."""

    def __init__(self, ttl_s: int) -> None:
        self._ttl_s = ttl_s
        self._until: dict[str, float] = {}

    def add(self, user_id: str) -> None:
        self._until[user_id] = time.monotonic() + self._ttl_s

    def contains(self, user_id: str) -> bool:
        until = self._until.get(user_id)
        if until is None:
            return False
        if until < time.monotonic():
            del self._until[user_id]
            return False
        return True


class RealtimeHooks:
    """What domain services tell the real-time layer. No-ops until a Socket.IO server is
    attached (REST-only tests, CLI commands)."""

    def join_group(self, group_id: str, user_ids: list[str]) -> None: ...
    def leave_group(self, group_id: str, user_ids: list[str]) -> None: ...
    def group_deleted(self, group_id: str) -> None: ...
    def disconnect_user(self, user_id: str) -> None: ...


@dataclass
class AppContext:
    settings: Any
    db: Database
    tokens: TokenService
    hasher: PasswordHasher
    rate_limiter: RateLimiter
    revoked_users: RevokedUsers
    revoked_sessions: RevokedSessions
    public_dir: Path
    realtime: RealtimeHooks = field(default_factory=RealtimeHooks)
    mail_wakeup: Any = None   # callable: nudge the outbox sender after a commit
    trusted_networks: tuple = ()
    inflight: set = field(default_factory=set)   # handlers still working (graceful shutdown)
    search: MessageIndex = field(default_factory=FulltextIndex)   # message search engine

    @classmethod
    def create(cls, settings: Any, db: Database) -> "AppContext":
        return cls(
            settings=settings,
            db=db,
            tokens=TokenService(settings),
            hasher=PasswordHasher(settings.auth_bcrypt_rounds),
            rate_limiter=RateLimiter(settings.server_rate_limits),
            revoked_users=RevokedUsers(settings.jwt_access_ttl_s),
            revoked_sessions=RevokedSessions(settings.jwt_access_ttl_s),
            public_dir=Path(settings.server_public_dir).resolve(),
            trusted_networks=tuple(ipaddress.ip_network(n, strict=False)
                                   for n in settings.server_trusted_proxies),
        )

    def wake_mail(self) -> None:
        if self.mail_wakeup is not None:
            self.mail_wakeup()
