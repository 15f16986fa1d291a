from __future__ import annotations

import datetime as dt

from ..db import Executor, Row


async def insert_session(db: Executor, *, session_id: str, user_id: str, token_hash: str,
                         now: dt.datetime, expires_at: dt.datetime) -> None:
    await db.execute(
        "INSERT INTO sessions (id, user_id, refresh_token_hash, created_at, last_used_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)", (session_id, user_id, token_hash, now, now, expires_at))


async def session_for_update(db: Executor, session_id: str) -> Row | None:
    return await db.fetch_one(
        "SELECT id, user_id, refresh_token_hash, expires_at, revoked_at FROM sessions"
        " WHERE id = %s FOR UPDATE", (session_id,))


async def rotate_session(db: Executor, session_id: str, token_hash: str, now: dt.datetime,
                         expires_at: dt.datetime) -> int:
    return await db.execute(
        "UPDATE sessions SET refresh_token_hash = %s, last_used_at = %s, expires_at = %s WHERE id = %s",
        (token_hash, now, expires_at, session_id))


async def revoke_session(db: Executor, session_id: str, user_id: str, now: dt.datetime) -> int:
    return await db.execute(
        "UPDATE sessions SET revoked_at = %s WHERE id = %s AND user_id = %s AND revoked_at IS NULL",
        (now, session_id, user_id))


async def revoke_user_sessions(db: Executor, user_id: str, now: dt.datetime) -> int:
    return await db.execute(
        "UPDATE sessions SET revoked_at = %s WHERE user_id = %s AND revoked_at IS NULL", (now, user_id))


async def delete_expired_sessions(db: Executor, now: dt.datetime) -> int:
    return await db.execute("DELETE FROM sessions WHERE expires_at < %s", (now,))


async def mark_token_used(db: Executor, jti: str, user_id: str, expires_at: dt.datetime) -> int:
    """1 if this token had not been used, 0 if it had (single-use tokens)."""
    return await db.execute(
        "INSERT IGNORE INTO used_tokens (jti, user_id, expires_at) VALUES (%s, %s, %s)",
        (jti, user_id, expires_at))


async def delete_expired_used_tokens(db: Executor, now: dt.datetime) -> int:
    return await db.execute("DELETE FROM used_tokens WHERE expires_at < %s", (now,))


async def active_session_ids_for_update(db: Executor, user_id: str) -> list[str]:
    rows = await db.fetch_all(
        "SELECT id FROM sessions WHERE user_id = %s AND revoked_at IS NULL FOR UPDATE", (user_id,))
    return [row["id"] for row in rows]


async def sessions_revoked_since(db: Executor, since: dt.datetime) -> list[Row]:
    """Uses ix_sessions_revoked (sql/002)."""
    return await db.fetch_all(
        "SELECT id, revoked_at FROM sessions WHERE revoked_at >= %s ORDER BY revoked_at", (since,))
