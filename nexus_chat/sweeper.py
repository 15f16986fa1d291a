"""The periodic sweep (docs/api.md#stories): deletes expired stories, their views (FK cascade) and
their media files; also purges expired sessions, spent reset tokens and old sent mail.

Reads never serve an expired story anyway; the sweep only reclaims rows and disk."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

import tornado.ioloop

from . import uploads
from .context import AppContext
from .db import db_unreachable
from .jsonutil import utcnow
from .lease import AlwaysHeld, Lease
from .queries import outbox, sessions, stories
from . import event_log
from .services import attachments

log = logging.getLogger("nexus_chat.sweeper")

BATCH = 500
# Long enough to look into a delivery complaint; links in them have expired by then anyway.
SENT_MAIL_KEPT = dt.timedelta(days=7)
# Listing the attachment directory costs a stat per file: hourly is soon enough for files
# whose rows are already gone (nobody can read them any more).
FILE_SCAN_INTERVAL_S = 3600


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


async def sweep_once(ctx: AppContext, *, scan_files: bool = True) -> dict[str, int]:
    """One pass; ``scan_files`` also lists the attachment directory for files whose rows went
    with a deleted account, conversation or group (the Sweeper does that hourly)."""
    now = utcnow()
    removed = {"stories": await sweep_stories(ctx),
               "unattachedUploads": await attachments.sweep_unattached(ctx),
               "events": await event_log.sweep(
                   ctx.db, dt.timedelta(seconds=ctx.settings.realtime_event_log_keep_s)),
               "strayFiles": await attachments.sweep_stray_files(ctx) if scan_files else 0,
               "sessions": await sessions.delete_expired_sessions(ctx.db, now),
               "usedTokens": await sessions.delete_expired_used_tokens(ctx.db, now),
               # Sent mail bodies hold verification/reset links: keep them only for a while.
               "sentMail": await outbox.delete_sent_mail_before(ctx.db, now - SENT_MAIL_KEPT)}
    if any(removed.values()):
        log.info("sweep removed stories=%d unattached_uploads=%d stray_files=%d sessions=%d"
                 " used_tokens=%d sent_mail=%d", removed["stories"], removed["unattachedUploads"],
                 removed["strayFiles"], removed["sessions"], removed["usedTokens"], removed["sentMail"])
    return removed


class Sweeper:
    """A ``tornado.ioloop.PeriodicCallback`` running ``sweep_once``; never two at a time, and
    with several processes only in the one holding the background-jobs ``lease``."""

    def __init__(self, ctx: AppContext, interval_s: float, lease: Lease | None = None) -> None:
        self.ctx = ctx
        self.lease = lease or AlwaysHeld()
        self.callback = tornado.ioloop.PeriodicCallback(self._tick, interval_s * 1000)
        self._running: asyncio.Task | None = None
        self._files_scanned_at = 0.0

    def start(self) -> None:
        self.callback.start()

    def _tick(self) -> None:
        if self._running is not None and not self._running.done():
            return  # the previous sweep is still going
        if not self.lease.held:
            return  # another process sweeps
        self._running = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        try:
            now = time.monotonic()
            scan_files = now - self._files_scanned_at >= FILE_SCAN_INTERVAL_S
            await sweep_once(self.ctx, scan_files=scan_files)
            if scan_files:
                self._files_scanned_at = now
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
