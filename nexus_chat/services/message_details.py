"""What a Message carries besides its row: its reactions and what it replies to.

A page of history gets both in one query each (never one per message); a tombstone has no
reactions.
"""
from __future__ import annotations

import asyncio
from typing import Any

from ..context import AppContext
from ..db import Row
from ..queries import chat as chat_q
from ..queries import reactions as reactions_q
from ..queries import replies as replies_q
from ..shapes import shape_messages, user_public
from . import attachments
from .message_access import MESSAGE_NOT_FOUND
from ..errors import not_found, validation_failed


def reaction_shape(row: Row) -> dict[str, Any]:
    """One (message, emoji) row of ``reactions_of``."""
    user_ids = row["user_ids"]
    return {"emoji": row["emoji"], "count": int(row["n"]),
            "userIds": user_ids.split(",") if user_ids else [], "reactedByMe": bool(row["mine"])}


def reply_shape(row: Row, senders: dict | None = None) -> dict[str, Any]:
    """``senders``: UserPublic already built for this page, by id (one per sender, not per row)."""
    key = row["sender_id"]
    if senders is None or key not in senders:
        sender = user_public(row, "sender_")
        if senders is not None:
            senders[key] = sender
    else:
        sender = senders[key]
    return {"id": row["id"], "senderId": sender["id"] if sender else None, "sender": sender,
            "snippet": row["snippet"] or "", "deleted": bool(row["deleted"])}


async def _reactions(ctx: AppContext, seqs: list[int], viewer_id: str | None) -> dict[int, list]:
    """Each message's reactions, emoji in the order they were first used."""
    by_message: dict[int, list[Row]] = {}
    for row in await reactions_q.reactions_of(ctx.db, seqs, viewer_id):
        by_message.setdefault(row["message_seq"], []).append(row)
    return {seq: [reaction_shape(row) for row in sorted(rows, key=lambda r: (r["first_at"], r["emoji"]))]
            for seq, rows in by_message.items()}


async def _replies(ctx: AppContext, ids: list[str]) -> dict[str, dict]:
    senders: dict = {}
    return {row["id"]: reply_shape(row, senders) for row in await replies_q.snippets(ctx.db, ids)}


async def detailed(ctx: AppContext, rows: list[Row], viewer_id: str | None) -> list[dict[str, Any]]:
    """Messages of ``rows`` (MESSAGE_COLUMNS), each with its reactions (``reactedByMe`` for
    ``viewer_id``), ``replyTo`` and attachments. Only the lookups the rows' ``has_*`` flags
    call for are made: a page of plain text messages is one query."""
    shaped = shape_messages(rows)
    live = [(row, message) for row, message in zip(rows, shaped) if row["deleted_at"] is None]
    seqs = [row["seq"] for row, _ in live if row["has_reactions"]]
    with_files = [message for row, message in live if row["has_attachments"]]
    reply_ids = list({row["reply_to_id"] for row in rows if row["reply_to_id"]})
    reactions: dict[int, list] = {}
    replies: dict[str, dict] = {}

    async def load_reactions() -> None:
        reactions.update(await _reactions(ctx, seqs, viewer_id))

    async def load_replies() -> None:
        replies.update(await _replies(ctx, reply_ids))

    lookups = ([load_reactions()] if seqs else []) + ([load_replies()] if reply_ids else [])
    if with_files:
        lookups.append(attachments.with_attachments(ctx, with_files))
    if lookups:
        await asyncio.gather(*lookups)
    for row, message in zip(rows, shaped):
        message["reactions"] = reactions.get(row["seq"], [])
        if row["reply_to_id"]:
            message["replyTo"] = replies.get(row["reply_to_id"])
    return shaped


async def detailed_message(ctx: AppContext, message_id: str, viewer_id: str | None) -> dict[str, Any]:
    row = await chat_q.message_by_id(ctx.db, message_id)
    if row is None:
        raise not_found(MESSAGE_NOT_FOUND)
    return (await detailed(ctx, [row], viewer_id))[0]


def for_everyone(message: dict[str, Any]) -> dict[str, Any]:
    """The Message as an event carries it: the same for every recipient, so no
    ``reactedByMe``-for-someone (always false)."""
    reactions = [{**reaction, "reactedByMe": False} for reaction in message["reactions"]]
    return {**message, "reactions": reactions}


async def reply_to(ctx: AppContext, message_id: str, *, conversation_id: str | None,
                   group_id: str | None) -> dict[str, Any]:
    """``replyTo`` of a new message; 400 unless ``message_id`` is a message of the same
    conversation or group (a deleted one too: the reply shows it as deleted)."""
    rows = await replies_q.snippets(ctx.db, [message_id])
    if not rows or (rows[0]["conversation_id"], rows[0]["group_id"]) != (conversation_id, group_id):
        raise validation_failed(["replyToId: Not a message of this conversation or group."])
    return reply_shape(rows[0])
