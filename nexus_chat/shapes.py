"""Public JSON shapes of users (docs/api.md#shapes). Only these functions turn user rows into output."""
from __future__ import annotations

from typing import Any

from .db import Row
from .jsonutil import iso


def user_self(row: Row) -> dict[str, Any]:
    """User: only ever about yourself."""
    return {
        "id": row["id"],
        "username": row["username"],
        "fullName": row["full_name"],
        "email": row["email"],
        "avatarUrl": row["avatar_url"] or None,
        "bio": row["bio"] or None,
        "emailVerifiedAt": iso(row["email_verified_at"]),
        "isVerified": row["email_verified_at"] is not None,
        "status": row["status"],
        "lastSeenAt": iso(row["last_seen_at"]),
        "sendReadReceipts": bool(row["send_read_receipts"]),
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }


def user_public(row: Row, prefix: str = "") -> dict[str, Any] | None:
    """UserPublic: anyone else. ``prefix`` reads joined columns such as ``sender_username``."""
    if row.get(f"{prefix}id") is None:
        return None
    return {
        "id": row[f"{prefix}id"],
        "username": row[f"{prefix}username"],
        "fullName": row[f"{prefix}full_name"],
        "avatarUrl": row[f"{prefix}avatar_url"] or None,
        "bio": row[f"{prefix}bio"] or None,
        "status": row[f"{prefix}status"],
        "lastSeenAt": iso(row[f"{prefix}last_seen_at"]),
    }


def user_short(row: Row, prefix: str = "") -> dict[str, Any] | None:
    """UserShort: story owners, viewers, group owners, members."""
    if row.get(f"{prefix}id") is None:
        return None
    return {
        "id": row[f"{prefix}id"],
        "username": row[f"{prefix}username"],
        "fullName": row[f"{prefix}full_name"],
        "avatarUrl": row[f"{prefix}avatar_url"] or None,
    }


def public_columns(table: str, prefix: str) -> str:
    """SELECT list for a joined user as UserPublic: `u.id AS sender_id, …`."""
    cols = ("id", "username", "full_name", "avatar_url", "bio", "status", "last_seen_at")
    return ", ".join(f"{table}.{c} AS {prefix}{c}" for c in cols)


def short_columns(table: str, prefix: str) -> str:
    cols = ("id", "username", "full_name", "avatar_url")
    return ", ".join(f"{table}.{c} AS {prefix}{c}" for c in cols)
