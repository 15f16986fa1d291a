"""What a Message carries besides its row: its reactions and what it replies to.

Both come with the row (MESSAGE_FIELDS: the reactions' summary kept on the message, and the
replied-to message joined in), so a page of history is one query whatever it holds; a
tombstone has no reactions.
"""
from __future__ import annotations

from typing import Any

from ..context import AppContext
from ..db import Row
from ..queries import chat as chat_q
from ..queries import reactions as reactions_q
from ..queries import replies as replies_q
from ..shapes import PUBLIC_USER_FIELDS, shape_messages, user_public
from . import attachments
from .message_access import MESSAGE_NOT_FOUND
from ..errors import not_found, validation_failed
from ..jsonutil import loads


def reaction_shape(emoji: str, count: int, user_ids: str, mine: bool) -> dict[str, Any]:
    return {"emoji": emoji, "count": int(count), "userIds": user_ids.split(",") if user_ids else [],
            "reactedByMe": bool(mine)}


def _summary(row: Row) -> list:
    """[[emoji, count, "first,user,ids", first_at], …] of a live message."""
    summary = row["reactions_summary"] if row["deleted_at"] is None else None
    return loads(summary) if summary else []


def _unsure(summary: list, viewer_id: str | None) -> bool:
    """The summary lists only the first users of each emoji: whether the viewer is among
    the others needs a look at message_reactions."""
    return viewer_id is not None and any(
        count > len(users.split(",")) and viewer_id not in users.split(",")
        for _, count, users, _ in summary)


def _reactions(seq: int, summary: list, viewer_id: str | None,
               mine: set[tuple[int, str]]) -> list[dict[str, Any]]:
    return [reaction_shape(emoji, count, users, viewer_id in users.split(",") or (seq, emoji) in mine)
            for emoji, count, users, _ in summary]


def _reply_row(row: Row) -> Row:
    """The replied-to message's columns of a MESSAGE_FIELDS row, as ``replies.snippets`` names them."""
    return {"id": row["reply_to_id"], "snippet": row["reply_snippet"], "deleted": row["reply_deleted"],
            **{key[len("reply_"):]: row[key] for key in _REPLY_SENDER_KEYS}}


_REPLY_SENDER_KEYS = tuple(f"reply_sender_{c}" for c in PUBLIC_USER_FIELDS)


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


async def detailed(ctx: AppContext, rows: list[Row], viewer_id: str | None) -> list[dict[str, Any]]:
    """Messages of ``rows`` (MESSAGE_FIELDS), each with its reactions (``reactedByMe`` for
    ``viewer_id``), ``replyTo`` and attachments: one more query when some message has
    attachments, and one when the viewer may have reacted past the users a summary lists."""
    shaped = shape_messages(rows)
    summaries = [_summary(row) for row in rows]
    unsure = [row["seq"] for row, summary in zip(rows, summaries) if summary and _unsure(summary, viewer_id)]
    mine: set[tuple[int, str]] = set()
    if unsure:
        mine = {(r["message_seq"], r["emoji"])
                for r in await reactions_q.my_reactions(ctx.db, viewer_id, unsure)}
    with_files = [message for row, message in zip(rows, shaped)
                  if row["has_attachments"] and row["deleted_at"] is None]
    if with_files:
        await attachments.with_attachments(ctx, with_files)
    senders: dict = {}
    for row, message, summary in zip(rows, shaped, summaries):
        message["reactions"] = _reactions(row["seq"], summary, viewer_id, mine)
        if row["reply_to_id"]:
            message["replyTo"] = reply_shape(_reply_row(row), senders) if row["reply_found"] else None
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
