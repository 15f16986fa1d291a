"""Revoked sessions: their access tokens are refused at once, on every request, without a
database round trip.

Every access token names its session (`sid`). Revoking a session (logout, password change
or reset, refresh-token reuse) stores ``revoked_at`` in the database and adds the session
here; a session stays in this set until the last access token it could have handed out
has expired (``revoked_at`` + the access-token lifetime), so the set holds at most one
access lifetime's worth of revocations.

Other processes learn about a revocation from the database: ``RevocationSync`` loads the
recent ones at start and then polls for new ones (an indexed range read every few seconds,
per process, not per request). Whoever finds a session newly revoked tells the listeners,
which disconnect that session's sockets. With several processes on Redis, ``revoke`` also
awaits the announcers, which push the revocation to the other processes at once
(cluster/sync.py); they call ``add``.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from .db import Database, db_unreachable
from .queries import sessions

log = logging.getLogger("nexus_chat.revocation")

# A transaction that revoked at T may commit a moment after a poll that already read past T.
POLL_OVERLAP_S = 30


class RevokedSessions:
    def __init__(self, access_ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self.access_ttl_s = access_ttl_s
        self._clock = clock
        self._until: dict[str, float] = {}     # session id -> epoch seconds it may be forgotten
        self._next_purge = 0.0
        # Told the ids of sessions newly revoked (the socket layer disconnects their sockets).
        self.listeners: list[Callable[[list[str]], None]] = []
        # Awaited by ``revoke`` with the sessions revoked here (several processes: tell the others).
        self.announcers: list[Callable[[list[str]], Awaitable[None]]] = []

    def __len__(self) -> int:
        return len(self._until)

    def contains(self, session_id: str) -> bool:
        until = self._until.get(session_id)
        if until is None:
            return False
        if until < self._clock():
            del self._until[session_id]
            return False
        return True

    def add(self, session_ids: Iterable[str], revoked_at: float | None = None) -> list[str]:
        """Remember the sessions; returns (and tells the listeners) the ones that are new."""
        now = self._clock()
        until = (now if revoked_at is None else revoked_at) + self.access_ttl_s
        if until < now:
            return []    # every access token of these sessions has expired already
        new = []
        for session_id in session_ids:
            if session_id not in self._until:
                new.append(session_id)
            self._until[session_id] = max(until, self._until.get(session_id, 0.0))
        self._purge(now)
        if new:
            for listener in self.listeners:
                try:
                    listener(new)
                except Exception:
                    log.exception("revocation listener failed")
        return new

    async def revoke(self, session_ids: Iterable[str]) -> list[str]:
        """A revocation made by this process (after its COMMIT): ``add``, then the announcers."""
        new = self.add(session_ids)
        if new:
            for announce in self.announcers:
                try:
                    await announce(new)
                except Exception:
                    log.exception("revocation announcer failed")
        return new

    def _purge(self, now: float) -> None:
        if now < self._next_purge:
            return
        self._next_purge = now + 60
        self._until = {sid: until for sid, until in self._until.items() if until >= now}


def _epoch(value: dt.datetime) -> float:
    return value.replace(tzinfo=dt.timezone.utc).timestamp()


class RevocationSync:
    """Loads the revocations of the last access lifetime, then polls for new ones."""

    def __init__(self, db: Database, revoked: RevokedSessions, poll_s: float) -> None:
        self.db = db
        self.revoked = revoked
        self.poll_s = poll_s
        self._since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) \
            - dt.timedelta(seconds=revoked.access_ttl_s)
        self._task: asyncio.Task | None = None

    async def load(self) -> int:
        """One pass: add every session revoked since the last pass; returns how many were new."""
        rows = await sessions.sessions_revoked_since(self.db, self._since)
        new = 0
        for row in rows:
            new += len(self.revoked.add([row["id"]], _epoch(row["revoked_at"])))
            since = row["revoked_at"] - dt.timedelta(seconds=POLL_OVERLAP_S)
            if since > self._since:
                self._since = since
        return new

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            await self.poll()

    async def poll(self) -> None:
        """``load``, failures logged (also run when this process may have missed a push)."""
        try:
            await self.load()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not db_unreachable(exc):   # an outage is logged once by the database tracker
                log.warning("loading revoked sessions failed", exc_info=True)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
