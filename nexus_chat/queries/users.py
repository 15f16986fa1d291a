from __future__ import annotations

import datetime as dt

from ..db import Executor, Row
from ..jsonutil import loads

USER_COLUMNS = ("id, username, full_name, email, avatar_url, bio, email_verified_at, status, "
                "last_seen_at, created_at, updated_at, send_read_receipts")


async def insert_user(db: Executor, *, user_id: str, username: str, full_name: str, email: str,
                      password_hash: str, now: dt.datetime) -> None:
    await db.execute(
        "INSERT INTO users (id, username, full_name, email, password_hash, status, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, 'offline', %s, %s)",
        (user_id, username, full_name, email, password_hash, now, now))


_USER_NAMES = tuple(name.strip() for name in USER_COLUMNS.split(","))
_DATES = {"email_verified_at", "last_seen_at", "created_at", "updated_at"}
# One JSON column instead of twelve: the pure-Python driver parses a column description
# packet per column of every result, which was a fifth of the CPU of `GET /auth/me`.
_USER_PACKED = "JSON_ARRAY(" + ", ".join(
    f"CAST({name} AS CHAR)" if name in _DATES else name for name in _USER_NAMES) + ") AS packed"


async def user_by_id(db: Executor, user_id: str) -> Row | None:
    """USER_COLUMNS, the dates as text (`2026-01-01 09:30:00.123`)."""
    row = await db.fetch_one(f"SELECT {_USER_PACKED} FROM users WHERE id = %s", (user_id,))
    return dict(zip(_USER_NAMES, loads(row["packed"]))) if row else None


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


# ---- search and profile (docs/api.md#users) ------------------------------------------------------
PROFILE_COLUMNS = {"username": "username", "full_name": "full_name", "bio": "bio",
                   "avatar_url": "avatar_url", "send_read_receipts": "send_read_receipts"}


def like_pattern(text: str) -> str:
    """`%text%` with LIKE's wildcards in ``text`` taken literally (escape character `!`)."""
    escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


async def search_users(db: Executor, viewer_id: str, text: str, limit: int = 20) -> list[Row]:
    """Users whose username or full name contains ``text`` (case-insensitive), not the viewer."""
    pattern = like_pattern(text)
    return await db.fetch_all(
        "SELECT u.id, u.username, u.full_name, u.avatar_url, u.bio, u.status, u.last_seen_at,"
        " u.email_verified_at, (c.id IS NOT NULL) AS is_contact"
        " FROM users u LEFT JOIN contacts c ON c.owner_id = %s AND c.contact_user_id = u.id"
        " WHERE u.id <> %s AND (u.username LIKE %s ESCAPE '!' OR u.full_name LIKE %s ESCAPE '!')"
        " ORDER BY u.username LIMIT %s",
        (viewer_id, viewer_id, pattern, pattern, limit))


async def username_taken(db: Executor, username: str, except_user_id: str) -> bool:
    row = await db.fetch_one("SELECT 1 AS found FROM users WHERE username = %s AND id <> %s LIMIT 1",
                             (username, except_user_id))
    return row is not None


async def update_profile(db: Executor, user_id: str, changes: dict, now: dt.datetime) -> int:
    """Set the given profile columns (keys of PROFILE_COLUMNS only) and updated_at."""
    columns = [PROFILE_COLUMNS[key] for key in changes]  # KeyError on anything else
    assignments = ", ".join(f"{column} = %s" for column in columns)
    sql = f"UPDATE users SET {assignments}{', ' if columns else ''}updated_at = %s WHERE id = %s"
    return await db.execute(sql, (*changes.values(), now, user_id))


async def users_existing(db: Executor, user_ids: list[str]) -> set[str]:
    if not user_ids:
        return set()
    marks = ", ".join(["%s"] * len(user_ids))
    rows = await db.fetch_all(f"SELECT id FROM users WHERE id IN ({marks})", tuple(user_ids))
    return {row["id"] for row in rows}


async def users_with_groups(db: Executor, user_ids: list[str]) -> list[Row]:
    """A /chat CONNECT's read, for many users at once: one row (user_id, group_id) per group
    of each user that exists, and one with group_id NULL for an existing user in no group."""
    if not user_ids:
        return []
    marks = ", ".join(["%s"] * len(user_ids))
    return await db.fetch_all(
        "SELECT u.id AS user_id, gm.group_id FROM users u"
        f" LEFT JOIN group_members gm ON gm.user_id = u.id WHERE u.id IN ({marks})", tuple(user_ids))


# ---- account deletion (docs/api.md#deleting-an-account) ------------------------------------------
async def delete_conversations_of(db: Executor, user_id: str) -> int:
    """The user's 1-on-1 conversations; their messages go with them (FK cascade)."""
    return await db.execute("DELETE FROM conversations WHERE user_low_id = %s OR user_high_id = %s",
                            (user_id, user_id))
