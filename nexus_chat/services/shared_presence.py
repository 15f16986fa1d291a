"""Presence across processes (realtime.adapter = redis; docs/scaling.md#presence): a user is
online while any socket on any process is connected.

Each process counts its own sockets (as `Presence` does) and registers in a shared ledger
(cluster/presence_ledger.py) which users it holds. Only the process whose registration
changes the cluster-wide answer stores the new status and publishes `userStatusChanged`, so
each transition is told once. The users of a process that died without saying so are found
by ``reap`` (every live process runs it on its heartbeat) and go offline then, within
``redis.process_ttl_s`` plus one heartbeat interval. While Redis is unreachable, changes wait
(the stored status stays as it was) and are settled when it is back.
"""
from __future__ import annotations

import logging
from typing import Protocol

from ..context import AppContext
from ..jsonutil import utcnow
from ..queries import chat as chat_queries
from ..queries import users
from .presence import Presence

log = logging.getLogger("nexus_chat.presence")


class Ledger(Protocol):
    async def arrive(self, user_id: str) -> bool: ...
    async def leave(self, user_id: str) -> bool: ...
    async def is_online(self, user_id: str) -> bool: ...
    async def reap(self) -> list[str]: ...
    async def retire(self) -> list[str]: ...
    async def others_alive(self) -> int: ...


class SharedPresence(Presence):
    """``_online`` here: the users this process has registered in the ledger."""

    def __init__(self, ctx: AppContext, ledger: Ledger) -> None:
        super().__init__(ctx)
        self.ledger = ledger
        self._unregistered: set[str] = set()    # ledger unreachable: settled on the next tick

    async def start(self) -> None:
        """Before serving: the first live process forgets what dead processes left in the
        ledger and resets the stored statuses (as a single process does after a restart).
        In a running cluster the live processes reap the dead ones (and tell it)."""
        if not await self.ledger.others_alive():
            await self.ledger.reap()
            await users.set_all_offline(self.ctx.db)

    async def _change(self, user_id: str, online: bool) -> None:
        """Registered (or unregistered) in the ledger; stored and told only if that changed
        the cluster's answer."""
        try:
            changed = await (self.ledger.arrive if online else self.ledger.leave)(user_id)
        except Exception:
            self._unregistered.add(user_id)
            log.warning("presence: the shared ledger is unreachable; user_id=%s waits", user_id)
            return
        self._unregistered.discard(user_id)
        self._count_online(user_id, online)
        if changed:
            await self._store_and_tell(user_id, "online" if online else "offline")

    async def _store_and_tell(self, user_id: str, status: str) -> None:
        now = utcnow()
        if await self._store(user_id, status, now):
            await self._tell(user_id, status, now)

    async def repair(self) -> None:
        """The database is back: store the cluster's current answer for each user whose
        change could not be written."""
        pending, self._unsynced = self._unsynced, set()
        for user_id in pending:
            try:
                async with self._locks.hold(user_id):
                    online = await self.ledger.is_online(user_id)
                    await self._store_and_tell(user_id, "online" if online else "offline")
            except Exception:
                self._unsynced.add(user_id)
                log.warning("presence repair failed user_id=%s", user_id, exc_info=True)

    # ---- hooks of the cluster bus -------------------------------------------------------
    async def tick(self) -> None:
        """On each heartbeat: settle what waited for Redis, then take offline the users of
        processes that died."""
        for user_id in list(self._unregistered):
            await self._sync(user_id)
        if self.closing:
            return
        gone = await self.ledger.reap()
        for user_id in gone:
            async with self._locks.hold(user_id):
                if await self.ledger.is_online(user_id):
                    continue   # back on another process meanwhile: that one told "online"
                log.info("presence: user_id=%s went offline with a process that stopped", user_id)
                await self._store_and_tell(user_id, "offline")

    async def rejoin(self) -> None:
        """The ledger lost this process (Redis restarted, or a freeze outlived the TTL):
        register again everyone connected here."""
        for user_id in list(self._online):
            async with self._locks.hold(user_id):
                if user_id in self._online and await self.ledger.arrive(user_id):
                    await self._store_and_tell(user_id, "online")

    async def close(self, timeout_s: float = 5.0) -> None:
        """Shutdown: stop counting at once; the users nobody else holds go offline."""
        await self._stop_changes(timeout_s)
        self._online.clear()
        self._counts.clear()
        try:
            gone = await self.ledger.retire()
        except Exception:
            log.warning("presence: could not leave the shared ledger; the others reap this process")
            return
        now = utcnow()
        if gone:
            await chat_queries.mark_offline(self.ctx.db, gone, now)
            for user_id in gone:
                try:
                    await self._tell(user_id, "offline", now)
                except Exception:
                    log.warning("presence: offline of user_id=%s not told", user_id, exc_info=True)
