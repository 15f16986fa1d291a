"""Who may act on a stored message, and who hears about it.

A message belongs to a 1-on-1 conversation (its two participants) or to a group (its current
members). Anyone else, a kicked or departed member included, is told the message does not
exist: 404, never a hint that it does.
"""
from __future__ import annotations

from typing import Any

from ..db import Executor, Row
from ..errors import not_found
from ..events import Audience
from ..queries import message_changes as message_changes_queries

MESSAGE_NOT_FOUND = "Message not found"
OWNER, ADMIN = "owner", "admin"


def is_participant(row: Row, user_id: str) -> bool:
    if row["conversation_id"] is not None:
        return user_id in (row["user_low_id"], row["user_high_id"])
    return row["my_role"] is not None


def _checked(row: Row | None, user_id: str) -> Row:
    if row is None or not is_participant(row, user_id):
        raise not_found(MESSAGE_NOT_FOUND)
    return row


async def message_for(db: Executor, message_id: str, user_id: str) -> Row:
    """The message (with its chat and the user's group role) if the user takes part in its chat."""
    return _checked(await message_changes_queries.message_for_actor(db, message_id, user_id), user_id)


async def locked_message_for(db: Executor, message_id: str, user_id: str) -> Row:
    """As ``message_for``, locked until the transaction ends."""
    return _checked(await message_changes_queries.message_for_actor_locked(db, message_id, user_id), user_id)


def is_group_moderator(row: Row) -> bool:
    return row["group_id"] is not None and row["my_role"] in (OWNER, ADMIN)


def chat_key(row: Row) -> tuple[str, str]:
    """The key ``send_message`` orders a chat's changes by (events follow commit order)."""
    if row["group_id"] is not None:
        return ("group", row["group_id"])
    return ("conversation", row["conversation_id"])


def chat_ids(row: Row) -> dict[str, Any]:
    """``conversationId``/``groupId`` of event payloads."""
    return {"conversationId": row["conversation_id"], "groupId": row["group_id"]}


def audience(row: Row) -> Audience:
    """Everyone who received the message: every connection of both participants, or the
    group's room (its current members)."""
    if row["group_id"] is not None:
        return Audience.to_group(row["group_id"])
    return Audience.to_conversation(row["user_low_id"], row["user_high_id"])
