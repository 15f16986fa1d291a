"""Reactions: at most one per user, message and emoji; at most 20 different emoji on a message.
REST (PUT/DELETE /api/chat/messages/:id/reactions/:emoji) and the `reactToMessage` event call
``react``. Idempotent: repeating a reaction (or its removal) changes nothing and publishes
nothing; concurrent identical reactions leave one row.
"""
from __future__ import annotations

from typing import Any

from ..context import AppContext
from ..errors import bad_request, conflict
from ..db import Row, Transaction
from ..jsonutil import dumps, utcnow
from ..queries import reactions as reactions_queries
from . import message_access as access
from .message_changes import MESSAGE_DELETED
from .message_details import detailed_message, reaction_shape

MAX_DISTINCT_REACTIONS = 20   # different emoji on one message
SUMMARY_BATCH = 500           # messages whose summaries are rewritten per query


def summary_text(rows: list[Row]) -> str | None:
    """``messages.reactions_summary`` from the message's ``reactions_of`` rows: the message's
    Reactions as the API answers them to someone who did not react (sql/013_reactions_wire.sql),
    in the order the emoji were first used; None for none."""
    if not rows:
        return None
    ordered = sorted(rows, key=lambda r: (r["first_at"], r["emoji"]))
    return dumps([reaction_shape(r["emoji"], r["n"], r["user_ids"], False) for r in ordered]).decode()


async def rewrite_summaries(tx: Transaction, message_seqs: list[int]) -> None:
    """Recomputes the messages' reaction summaries from message_reactions (in the transaction
    that changed them)."""
    for start in range(0, len(message_seqs), SUMMARY_BATCH):
        chunk = message_seqs[start:start + SUMMARY_BATCH]
        by_message: dict[int, list[Row]] = {seq: [] for seq in chunk}
        for row in await reactions_queries.reactions_of(tx, chunk):
            by_message[row["message_seq"]].append(row)
        await reactions_queries.set_summaries(tx, [(summary_text(rows), seq) for seq, rows in by_message.items()])


async def react(ctx: AppContext, user_id: str, message_id: str, emoji: str, react: bool) -> dict[str, Any]:
    """Adds (``react``) or removes the user's ``emoji`` on the message; returns the Message.
    A change publishes `messageReaction` {messageId, conversationId, groupId, emoji, userId,
    react, count} to the message's audience: a delta, never the whole message."""
    row = await access.message_for(ctx.db, message_id, user_id)
    async with ctx.chat_cache.locks.hold(access.chat_key(row)):
        async with ctx.db.transaction() as tx:
            # The message row lock serialises this message's reactions: the count of
            # distinct emoji below cannot be passed by a concurrent reaction.
            row = await access.locked_message_for(tx, message_id, user_id)
            if row["deleted_at"] is not None:
                raise conflict(MESSAGE_DELETED)
            counts = await reactions_queries.emoji_counts(tx, row["seq"], emoji)
            count = int(counts["emoji_count"])
            if react:
                if count == 0 and int(counts["distinct_emoji"]) >= MAX_DISTINCT_REACTIONS:
                    raise bad_request(f"A message carries at most {MAX_DISTINCT_REACTIONS} different reactions")
                changed = await reactions_queries.insert_reaction(tx, row["seq"], emoji, user_id, utcnow()) == 1
                count += changed
            else:
                changed = await reactions_queries.delete_reaction(tx, row["seq"], emoji, user_id) == 1
                count -= changed
            if changed:
                await rewrite_summaries(tx, [row["seq"]])
        if changed:
            payload = {"messageId": message_id, **access.chat_ids(row), "emoji": emoji,
                       "userId": user_id, "react": react, "count": count}
            await ctx.events.publish("messageReaction", payload, access.audience(row))
    # Read after the chat's lock is released: the answer needs no ordering, and holding the
    # lock for it serialised a busy conversation's reactions at a few dozen a second.
    return await detailed_message(ctx, message_id, user_id)
