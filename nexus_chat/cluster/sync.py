"""Keeps per-process memory in step across processes through the bus (cluster/bus.py):

* the chat cache (services/chat_cache.py) and the rooms of this process's sockets: every
  membership record published here (invite, kick, leave, group or account deleted) is applied
  by every other process too, to its chat cache and to its own sockets (the ``listeners``,
  the socket layer's), before the publisher's request is answered (the bus waits for every
  live process to acknowledge); after notices may have been missed, those caches start empty;
* deleted accounts: their access tokens are refused on every process before the deletion is
  answered;
* revoked sessions (revocation.py): a session revoked here is added on every other process,
  which disconnects its sockets there, before the revocation is answered (the database poll
  stays as the safety net).

Deletions and revocations are also kept in Redis for one access-token lifetime, for a process
that missed them (cluster/bus.py). The Redis room adapter moves the sockets of every process
as well (its requests are not acknowledged; moving them here again does nothing).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..events import GroupDeleted, MembershipChange, Record, UserDeleted
from ..context import RevokedUsers
from ..revocation import RevokedSessions
from ..services.chat_cache import ChatCache
from .bus import ClusterBus

log = logging.getLogger("nexus_chat.cluster")

MEMBERSHIP, GROUP_DELETED, USER_DELETED, REVOKED = "membership", "group-deleted", "user-deleted", "revoked"


def notice_of(record: Record) -> tuple[str, dict[str, Any]] | None:
    if isinstance(record, MembershipChange):
        return MEMBERSHIP, {"group": record.group_id, "users": list(record.user_ids), "joined": record.joined}
    if isinstance(record, GroupDeleted):
        return GROUP_DELETED, {"group": record.group_id}
    if isinstance(record, UserDeleted):
        return USER_DELETED, {"user": record.user_id}
    return None


def record_of(kind: Any, notice: dict) -> Record | None:
    """The record a notice stands for; None for anything malformed (logged)."""
    group, user, users, joined = (notice.get(k) for k in ("group", "user", "users", "joined"))
    if kind == MEMBERSHIP and isinstance(group, str) and isinstance(joined, bool) \
            and isinstance(users, list) and all(isinstance(u, str) for u in users):
        return MembershipChange(group, tuple(users), joined)
    if kind == GROUP_DELETED and isinstance(group, str):
        return GroupDeleted(group)
    if kind == USER_DELETED and isinstance(user, str):
        return UserDeleted(user)
    log.warning("cluster: malformed %s notice ignored", kind)
    return None


class StateSync:
    def __init__(self, bus: ClusterBus, cache: ChatCache, revoked: RevokedSessions,
                 deleted: RevokedUsers) -> None:
        self.bus = bus
        self.cache = cache
        self.revoked = revoked
        self.deleted = deleted
        # Told the records of other processes after the chat cache, before the acknowledgement
        # (the socket layer moves and disconnects this process's sockets).
        self.listeners: list[Callable[[Record], None]] = []
        for kind in (MEMBERSHIP, GROUP_DELETED, USER_DELETED):
            bus.handlers[kind] = self._on_membership
        bus.handlers[REVOKED] = self._on_revoked
        bus.on_missed.append(self._missed)
        revoked.announcers.append(self.announce)

    # ---- outgoing: awaited, so that the other processes know before the request is answered
    async def stage(self, record: Record) -> Record:
        """A stage on ``ctx.events``: membership records published in this process."""
        notice = notice_of(record)
        if notice is not None:
            # A deletion is kept for a process that misses it while its tokens may be valid.
            keep_s = self.revoked.access_ttl_s if notice[0] == USER_DELETED else 0
            await self.bus.publish(notice[0], keep_s=keep_s, **notice[1])
        return record

    async def announce(self, session_ids: list[str]) -> None:
        """An announcer of ``RevokedSessions``: sessions revoked in this process."""
        await self.bus.publish(REVOKED, keep_s=self.revoked.access_ttl_s, sessions=session_ids,
                               at=time.time())

    # ---- incoming ------------------------------------------------------------------------
    def _on_membership(self, notice: dict) -> None:
        record = record_of(notice.get("kind"), notice)
        if record is None:
            return
        if isinstance(record, UserDeleted):   # its access tokens are refused here too
            self.deleted.add(record.user_id)
        self.cache.on_record(record)
        for listener in self.listeners:
            try:
                listener(record)
            except Exception:
                log.exception("cluster: a listener failed on %s", type(record).__name__)

    def _on_revoked(self, notice: dict) -> None:
        sessions, at = notice.get("sessions"), notice.get("at")
        if not isinstance(sessions, list) or not isinstance(at, (int, float)):
            return
        self.revoked.add([s for s in sessions[:10_000] if isinstance(s, str)], min(float(at), time.time()))

    async def _missed(self) -> None:
        self.cache.clear()
