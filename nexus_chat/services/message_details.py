"""What a Message carries besides its row: its reactions and what it replies to.

Both come with the row (MESSAGE_FIELDS: the reactions' summary kept on the message, already in
the answer's shape, and the replied-to message joined in), so a page of history is one query
whatever it holds; a tombstone has no reactions.
"""
from __future__ import annotations

from typing import Any

from ..context import AppContext
from ..db import Row
from ..queries import chat as chat_q
from ..queries import reactions as reactions_q
from ..queries import replies as replies_q
from ..shapes import shape_messages, user_public, user_public_shared
from . import attachments
from .message_access import MESSAGE_NOT_FOUND
from ..errors import not_found, validation_failed


def reaction_shape(emoji: str, count: int, user_ids: str | None, mine: bool) -> dict[str, Any]:
    """Reaction. ``user_ids``: comma-separated, as message_reactions' GROUP_CONCAT gives them."""
    return {"emoji": emoji, "count": int(count), "userIds": user_ids.split(",") if user_ids else [],
            "reactedByMe": bool(mine)}


def reply_shape(row: Row, senders: dict | None = None) -> dict[str, Any]:
    """``replyTo`` from a ``replies.snippets`` row. ``senders``: UserPublic already built,
    by id (one per sender, not per row)."""
    sender = user_public(row, "sender_") if senders is None else user_public_shared(row, "sender_", senders)
    return {"id": row["id"], "senderId": sender["id"] if sender else None, "sender": sender,
            "snippet": row["snippet"] or "", "deleted": bool(row["deleted"])}


def _reply(row: Row, senders: dict) -> dict[str, Any] | None:
    """``replyTo`` from a MESSAGE_FIELDS row (the replied-to message joined in); None when
    that message is gone. Its sender's UserPublic is shared with the page's (``senders``):
    read by the same statement, so the same values."""
    if not row["reply_found"]:
        return None
    return {"id": row["reply_to_id"], "senderId": row["reply_sender_id"],
            "sender": user_public_shared(row, "reply_sender_", senders),
            "snippet": row["reply_snippet"] or "", "deleted": bool(row["reply_deleted"])}


async def detailed(ctx: AppContext, rows: list[Row], viewer_id: str | None,
                   senders: dict | None = None) -> list[dict[str, Any]]:
    """Messages of ``rows`` (MESSAGE_FIELDS), each with its reactions (``reactedByMe`` for
    ``viewer_id``), ``replyTo`` and attachments: one more query when some message has
    attachments, and one when the viewer may have reacted past the users a summary lists.

    A row's ``reactions`` are the summary kept on the message, already the Reactions the API
    answers (sql/013_reactions_wire.sql), decoded with the row: only ``reactedByMe`` is
    set here, in place (every row is a fresh decode). ``senders``: UserPublic by id, shared
    with the caller's other users of the same statement (so the same values)."""
    if senders is None:
        senders = {}
    shaped = shape_messages(rows, senders)
    unsure: list[tuple[int, dict[str, Any]]] = []   # (seq, reaction) the viewer may be behind
    with_files = []
    for row, message in zip(rows, shaped):
        if row["deleted_at"] is None:
            reactions = row["reactions"]
            if reactions:
                if type(reactions[0]) is list:   # 010's form, written by a process older than 013
                    reactions = [reaction_shape(emoji, n, users, False) for emoji, n, users, _ in reactions]
                message["reactions"] = reactions
                if viewer_id is not None:
                    for reaction in reactions:
                        users = reaction["userIds"]
                        if viewer_id in users:
                            reaction["reactedByMe"] = True
                        elif reaction["count"] > len(users):   # the summary lists the first few only
                            unsure.append((row["seq"], reaction))
            if row["has_attachments"]:
                with_files.append(message)
        if row["reply_to_id"]:
            message["replyTo"] = _reply(row, senders)
    if unsure:
        mine = {(r["message_seq"], r["emoji"]) for r in await reactions_q.my_reactions(
            ctx.db, viewer_id, list(dict.fromkeys(seq for seq, _ in unsure)))}
        for seq, reaction in unsure:
            if (seq, reaction["emoji"]) in mine:
                reaction["reactedByMe"] = True
    if with_files:
        await attachments.with_attachments(ctx, with_files)
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
