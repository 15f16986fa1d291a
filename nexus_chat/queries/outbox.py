from __future__ import annotations

import datetime as dt

from ..db import Executor, Row


async def enqueue_mail(db: Executor, *, recipient: str, subject: str, text_body: str, html_body: str,
                       now: dt.datetime) -> None:
    await db.execute(
        "INSERT INTO mail_outbox (recipient, subject, text_body, html_body, next_attempt_at, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)", (recipient, subject, text_body, html_body, now, now))


async def due_mail(db: Executor, now: dt.datetime, limit: int = 20) -> list[Row]:
    return await db.fetch_all(
        "SELECT id, recipient, subject, text_body, html_body, attempts, next_attempt_at FROM mail_outbox"
        " WHERE sent_at IS NULL AND next_attempt_at <= %s ORDER BY id LIMIT %s", (now, limit))


async def claim_mail(db: Executor, mail_id: int, seen_next_attempt_at: dt.datetime,
                     until: dt.datetime) -> bool:
    """Sets an unsent mail aside until ``until`` if it is still as ``due_mail`` read it;
    False when another sender claimed (or sent) it meanwhile."""
    changed = await db.execute(
        "UPDATE mail_outbox SET next_attempt_at = %s"
        " WHERE id = %s AND sent_at IS NULL AND next_attempt_at = %s",
        (until, mail_id, seen_next_attempt_at))
    return changed == 1


async def mark_mail_sent(db: Executor, mail_id: int, now: dt.datetime) -> int:
    return await db.execute("UPDATE mail_outbox SET sent_at = %s, attempts = attempts + 1 WHERE id = %s",
                            (now, mail_id))


async def mark_mail_failed(db: Executor, mail_id: int, error: str, next_attempt_at: dt.datetime) -> int:
    return await db.execute(
        "UPDATE mail_outbox SET attempts = attempts + 1, last_error = %s, next_attempt_at = %s WHERE id = %s",
        (error[:500], next_attempt_at, mail_id))


async def end_backoff(db: Executor, now: dt.datetime) -> int:
    """Every unsent mail waiting out a retry delay becomes due now."""
    return await db.execute(
        "UPDATE mail_outbox SET next_attempt_at = %s WHERE sent_at IS NULL AND next_attempt_at > %s",
        (now, now))


async def pending_mail_count(db: Executor) -> int:
    row = await db.fetch_one("SELECT COUNT(*) AS n FROM mail_outbox WHERE sent_at IS NULL")
    return int(row["n"]) if row else 0


async def delete_sent_mail_before(db: Executor, before: dt.datetime) -> int:
    return await db.execute("DELETE FROM mail_outbox WHERE sent_at IS NOT NULL AND sent_at < %s", (before,))
