"""Presence (docs/realtime.md#presence): a user is online while at least one of their sockets is
connected. The first socket makes them `online`, the last disconnect `offline`; each change
is stored (status, lastSeenAt) and told to the people who know the user and to the user's
own sockets — never to everyone connected.
"""
from __future__ import annotations

import asyncio
import logging

from ..context import AppContext
from ..db import db_unreachable
from ..events import Audience
from ..jsonutil import iso, utcnow
from ..queries import chat as chat_queries
from ..queries import users
from .chat_cache import KeyedLocks

log = logging.getLogger("nexus_chat.presence")


class Presence:
    """Counts connected sockets per user (plain ids: the socket layer reports them) and
    publishes transitions (`userStatusChanged`, volatile). Writes for one user are
    serialised, and each one stores the *current* state, so a quick connect/disconnect can
    never leave a stale status behind. Created by the runtime, fed by the socket layer."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._counts: dict[str, int] = {}
        self._online: set[str] = set()      # users stored as online by this process
        self._locks = KeyedLocks()
        self._busy = 0
        self.closing = False
        # Users whose stored status could not be written (the database was down): written
        # when it is back, so nobody who left during an outage stays "online" for ever.
        self._unsynced: set[str] = set()
        ctx.db.availability.on_recovered(self._schedule_repair)

    def socket_count(self, user_id: str) -> int:
        return self._counts.get(user_id, 0)

    async def connected(self, user_id: str) -> None:
        self._counts[user_id] = self._counts.get(user_id, 0) + 1
        await self._sync(user_id)

    async def disconnected(self, user_id: str) -> None:
        left = self._counts.get(user_id, 0) - 1
        if left > 0:
            self._counts[user_id] = left
        else:
            self._counts.pop(user_id, None)
        await self._sync(user_id)

    async def _sync(self, user_id: str) -> None:
        """Brings the user's state in line with the sockets counted here, if it is not: one
        change at a time per user, none once closing."""
        if self.closing:
            return
        self._busy += 1
        try:
            async with self._locks.hold(user_id):
                if self.closing:
                    return
                online = user_id in self._counts
                if online != (user_id in self._online):
                    await self._change(user_id, online)
        finally:
            self._busy -= 1

    async def _change(self, user_id: str, online: bool) -> None:
        """The user came online (or went offline) here: stored, then told."""
        status, now = ("online" if online else "offline"), utcnow()
        if not await self._store(user_id, status, now):
            return
        self._count_online(user_id, online)
        await self._tell(user_id, status, now)

    def _count_online(self, user_id: str, online: bool) -> None:
        if online:
            self._online.add(user_id)
        else:
            self._online.discard(user_id)

    async def _store(self, user_id: str, status: str, now) -> bool:
        """Stores the user's status; False (and remembered for ``repair``) while the
        database is away."""
        try:
            await users.set_presence(self.ctx.db, user_id, status, now)
        except Exception as exc:
            if not db_unreachable(exc):
                raise
            self._unsynced.add(user_id)   # logged once by the database tracker
            return False
        self._unsynced.discard(user_id)
        return True

    async def _tell(self, user_id: str, status: str, now) -> None:
        """`userStatusChanged` to those who know the user and to the user's own sockets."""
        self.ctx.chat_cache.forget_profile(user_id)
        try:
            audience = await chat_queries.presence_audience(self.ctx.db, user_id)
        except Exception as exc:
            if not db_unreachable(exc):
                raise
            audience = []   # stored; only the user's own sockets hear it this time
        await self.ctx.events.publish(
            "userStatusChanged", {"userId": user_id, "status": status, "lastSeenAt": iso(now)},
            Audience.to_users([*audience, user_id]), volatile=True)

    def _schedule_repair(self) -> None:
        if self._unsynced and not self.closing:
            asyncio.get_running_loop().create_task(self.repair())

    async def repair(self) -> None:
        """Store (and tell) the current status of everyone whose change was lost."""
        pending, self._unsynced = self._unsynced, set()
        for user_id in pending:
            try:
                await self._sync(user_id)
            except Exception:
                log.exception("presence repair failed user_id=%s", user_id)

    async def _stop_changes(self, timeout_s: float) -> None:
        """No change starts from now on; those running get up to ``timeout_s`` to finish."""
        self.closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._busy and loop.time() < deadline:
            await asyncio.sleep(0.01)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Shutdown: stop publishing, let running writes finish, store everyone offline."""
        await self._stop_changes(timeout_s)
        online, self._online = list(self._online), set()
        self._counts.clear()
        if online:
            await chat_queries.mark_offline(self.ctx.db, online, utcnow())
