"""Public JSON shapes of users and messages (docs/api.md#shapes). Only these functions turn user
and message rows into output."""
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


def user_public_shared(row: Row, prefix: str, users: dict) -> dict[str, Any] | None:
    """``user_public(row, prefix)``, built once per user id into ``users`` and shared from
    there: rows read together carry the same values for a user, and a page or a list names
    few users many times (a measurable share of a history request)."""
    key = row.get(f"{prefix}id")
    if key is None:
        return None
    found = users.get(key)
    if found is None:
        found = users[key] = user_public(row, prefix)
    return found


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


PUBLIC_USER_FIELDS = ("id", "username", "full_name", "avatar_url", "bio", "status", "last_seen_at")


def public_columns(table: str, prefix: str) -> str:
    """SELECT list for a joined user as UserPublic: `u.id AS sender_id, …`."""
    return ", ".join(f"{table}.{c} AS {prefix}{c}" for c in PUBLIC_USER_FIELDS)


def short_columns(table: str, prefix: str) -> str:
    cols = ("id", "username", "full_name", "avatar_url")
    return ", ".join(f"{table}.{c} AS {prefix}{c}" for c in cols)


def message_shape(row: Row, sender: dict | None = None) -> dict[str, Any]:
    """Message (docs/api.md#chat). ``row`` carries the sender as ``sender_*`` columns unless
    ``sender`` (UserPublic) is given."""
    if sender is None:
        sender = user_public(row, "sender_")
    return {
        "id": row["id"],
        "content": row["content"],
        "senderId": sender["id"] if sender else None,
        "sender": sender,
        "conversationId": row["conversation_id"],
        "groupId": row["group_id"],
        "isRead": bool(row["is_read"]),
        "readAt": iso(row["read_at"]),
        "clientMessageId": row["client_message_id"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "editedAt": iso(row.get("edited_at")),
        "deletedAt": iso(row.get("deleted_at")),
        "deletedBy": row.get("deleted_by"),
        "replyTo": None,        # filled in by services/message_details.py
        "reactions": [],
        "attachments": [],      # likewise
    }


def shape_messages(rows: list[Row], senders: dict | None = None) -> list[dict[str, Any]]:
    """Messages of one page: a conversation has two senders, so each sender's UserPublic is
    built once, not once per row (a measurable share of a history request). ``senders``
    collects them by id, for the caller to reuse (the senders of replied-to messages)."""
    if senders is None:
        senders = {}
    return [message_shape(row, user_public_shared(row, "sender_", senders)) for row in rows]
