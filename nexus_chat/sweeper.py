"""The periodic sweep (docs/api.md#stories): deletes expired stories, their views (FK cascade) and
their media files; also purges expired sessions, spent reset tokens and old sent mail.

Reads never serve an expired story anyway; the sweep only reclaims rows and disk."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging

import tornado.ioloop

from . import uploads
from .context import AppContext
from .errors import db_unreachable
from .jsonutil import utcnow
from .queries import outbox, sessions, stories

log = logging.getLogger("nexus_chat.sweeper")

BATCH = 500
# Long enough to look into a delivery complaint; links in them have expired by then anyway.
SENT_MAIL_KEPT = dt.timedelta(days=7)


async def sweep_stories(ctx: AppContext) -> int:
    """Delete every story expired now, batch by batch; returns how many went."""
    total = 0
    now = utcnow()
    while True:
        rows = await stories.expired_stories(ctx.db, now, BATCH)
        if not rows:
            return total
        await stories.delete_stories(ctx.db, [row["id"] for row in rows])
        await uploads.remove(ctx.public_dir, *[url for row in rows
                                               for url in (row["image_url"], row["video_url"])])
        total += len(rows)
        if len(rows) < BATCH:
            return total


async def sweep_once(ctx: AppContext) -> dict[str, int]:
    now = utcnow()
    removed = {"stories": await sweep_stories(ctx),
               "sessions": await sessions.delete_expired_sessions(ctx.db, now),
               "usedTokens": await sessions.delete_expired_used_tokens(ctx.db, now),
               # Sent mail bodies hold verification/reset links: keep them only for a while.
               "sentMail": await outbox.delete_sent_mail_before(ctx.db, now - SENT_MAIL_KEPT)}
    if any(removed.values()):
        log.info("sweep removed stories=%d sessions=%d used_tokens=%d sent_mail=%d",
                 removed["stories"], removed["sessions"], removed["usedTokens"], removed["sentMail"])
    return removed


class Sweeper:
    """A ``tornado.ioloop.PeriodicCallback`` running ``sweep_once``; never two at a time."""

    def __init__(self, ctx: AppContext, interval_s: float) -> None:
        self.ctx = ctx
        self.callback = tornado.ioloop.PeriodicCallback(self._tick, interval_s * 1000)
        self._running: asyncio.Task | None = None

    def start(self) -> None:
        self.callback.start()

    def _tick(self) -> None:
        if self._running is not None and not self._running.done():
            return  # the previous sweep is still going
        self._running = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        try:
            await sweep_once(self.ctx)
        except Exception as exc:
            # The database may be briefly away (its tracker logs that); the next tick tries again.
            if not db_unreachable(exc):
                log.warning("sweep failed; retrying at the next interval", exc_info=True)

    async def stop(self) -> None:
        self.callback.stop()
        if self._running is not None and not self._running.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._running), timeout=5)
            except Exception:
                self._running.cancel()
