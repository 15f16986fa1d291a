from __future__ import annotations

import datetime as dt

from ..db import Executor, Row

USER_COLUMNS = ("id, username, full_name, email, avatar_url, bio, email_verified_at, status, "
                "last_seen_at, created_at, updated_at")


async def insert_user(db: Executor, *, user_id: str, username: str, full_name: str, email: str,
                      password_hash: str, now: dt.datetime) -> None:
    await db.execute(
        "INSERT INTO users (id, username, full_name, email, password_hash, status, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, 'offline', %s, %s)",
        (user_id, username, full_name, email, password_hash, now, now))


async def user_by_id(db: Executor, user_id: str) -> Row | None:
    return await db.fetch_one(f"SELECT {USER_COLUMNS} FROM users WHERE id = %s", (user_id,))


async def user_by_id_for_update(db: Executor, user_id: str) -> Row | None:
    return await db.fetch_one(f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE id = %s FOR UPDATE",
                              (user_id,))


async def credentials_by_email(db: Executor, email: str) -> Row | None:
    return await db.fetch_one(
        "SELECT id, email, password_hash, email_verified_at FROM users WHERE email = %s", (email,))


async def password_hash_of(db: Executor, user_id: str) -> str | None:
    row = await db.fetch_one("SELECT password_hash FROM users WHERE id = %s", (user_id,))
    return row["password_hash"] if row else None


async def user_exists_with(db: Executor, username: str, email: str) -> bool:
    row = await db.fetch_one("SELECT 1 AS found FROM users WHERE username = %s OR email = %s LIMIT 1",
                             (username, email))
    return row is not None


async def mark_email_verified(db: Executor, user_id: str, now: dt.datetime) -> int:
    return await db.execute(
        "UPDATE users SET email_verified_at = %s, updated_at = %s"
        " WHERE id = %s AND email_verified_at IS NULL", (now, now, user_id))


async def set_password_hash(db: Executor, user_id: str, password_hash: str, now: dt.datetime) -> int:
    return await db.execute("UPDATE users SET password_hash = %s, updated_at = %s WHERE id = %s",
                            (password_hash, now, user_id))


async def delete_user(db: Executor, user_id: str) -> int:
    return await db.execute("DELETE FROM users WHERE id = %s", (user_id,))


async def set_all_offline(db: Executor) -> int:
    return await db.execute("UPDATE users SET status = 'offline' WHERE status <> 'offline'")


async def set_presence(db: Executor, user_id: str, status: str, now: dt.datetime) -> int:
    return await db.execute("UPDATE users SET status = %s, last_seen_at = %s WHERE id = %s",
                            (status, now, user_id))
