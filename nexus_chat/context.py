"""What the application owns, handed to handlers, services and the Socket.IO layer."""
from __future__ import annotations

import functools
import ipaddress
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .coalesce import Coalescer
from .db import Database
from .events import Events
from .intake import BodyStreams
from .media_pool import MediaPool
from .message_writer import MessageWriter
from .offsets import Progress
from .passwords import PasswordHasher
from .queries import chat as chat_queries
from .ratelimit import RateLimiter
from .revocation import RevokedSessions
from .search_index import FulltextIndex, MessageIndex
from .spool import UploadGate
from .tokens import TokenService

if TYPE_CHECKING:
    from .services.chat_cache import ChatCache


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
    chat_cache: ChatCache           # the domain's caches, kept in step by membership events
    messages: MessageWriter         # new messages, a multi-row INSERT per batch (group commit)
    events: Events = field(default_factory=Events)   # the port services publish on (events.py)
    mail_wakeup: Any = None   # callable: nudge the outbox sender after a commit
    trusted_networks: tuple = ()
    inflight: set = field(default_factory=set)   # handlers still working (graceful shutdown)
    search: MessageIndex = field(default_factory=FulltextIndex)   # message search engine
    cluster: Any = None       # the Redis room adapter (realtime.adapter = redis): .up, .url
    lease: Any = None         # lease.Lease: whether this process runs the sweeper and the outbox
    media: MediaPool = field(default_factory=MediaPool)   # worker processes for Pillow and upload files
    body_streams: BodyStreams = field(default_factory=BodyStreams)   # large bodies read at once
    # What this process delivered of each event-log writer (offsets.py): moved by the socket
    # delivery, read by the REST catch-up for where a reader starts.
    progress: Progress = field(default_factory=Progress)
    upload_gate: UploadGate = field(default_factory=lambda: UploadGate(3, 128))   # from settings in create()
    # Senders' profiles the chat cache no longer holds, read together (services/chat.py): when
    # sends wait longer than the cache keeps a profile (a backlog), every send misses it, and one
    # query per send made the backlog grow. Set in create() (it reads through ``db``).
    profile_reads: Coalescer | None = None

    @classmethod
    def create(cls, settings: Any, db: Database, *, chat_cache: ChatCache) -> "AppContext":
        return cls(
            settings=settings,
            db=db,
            tokens=TokenService(settings),
            hasher=PasswordHasher(settings.auth_bcrypt_rounds),
            rate_limiter=RateLimiter(settings.server_rate_limits),
            revoked_users=RevokedUsers(settings.jwt_access_ttl_s),
            revoked_sessions=RevokedSessions(settings.jwt_access_ttl_s),
            public_dir=Path(settings.server_public_dir).resolve(),
            chat_cache=chat_cache,
            messages=MessageWriter(db, settings.chat_group_commit_window_ms / 1000),
            trusted_networks=tuple(ipaddress.ip_network(n, strict=False)
                                   for n in settings.server_trusted_proxies),
            upload_gate=UploadGate(settings.uploads_concurrent_per_user, settings.uploads_concurrent_max),
            profile_reads=Coalescer(functools.partial(chat_queries.public_users_by_id, db)),
        )

    def wake_mail(self) -> None:
        if self.mail_wakeup is not None:
            self.mail_wakeup()
