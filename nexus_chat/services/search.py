"""Message search (GET /api/chat/search): who may find what, paging, and the hit shape.

A user finds messages of the 1-on-1 conversations they take part in and of the groups they
are a member of now; the engine behind it (search_index.MessageIndex) is handed that scope.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import validation_failed
from ..queries import chat as chat_queries
from ..queries import message_changes as message_changes_queries
from ..search_index import Scope
from ..searchtext import snippet
from ..shapes import message_shape, user_public
from .attachments import with_attachments
from . import message_access as access
from .chat import require_member

if TYPE_CHECKING:
    from ..context import AppContext


def hit_shape(row: dict[str, Any], words: tuple[str, ...]) -> dict[str, Any]:
    group = None
    if row["group_id"] is not None:
        group = {"id": row["group_id"], "name": row["group_name"], "iconUrl": row["group_icon_url"]}
    conversation = None
    if row["conversation_id"] is not None:
        conversation = {"id": row["conversation_id"], "partner": user_public(row, "partner_")}
    return {"message": message_shape(row), "snippet": snippet(row["content"], words),
            "conversation": conversation, "group": group}


async def search_messages(ctx: AppContext, user_id: str, text: str, *, recipient_id: str | None = None,
                          group_id: str | None = None, before: str | None = None,
                          limit: int = 20) -> dict[str, Any]:
    """``{results, hasMore, nextBefore}``: hits newest first; pass ``nextBefore`` as
    ``before`` for the next page. At most one of recipient_id / group_id narrows the search."""
    if recipient_id is not None and group_id is not None:
        raise validation_failed(["target: At most one of recipientId or groupId may be given."])
    empty = {"results": [], "hasMore": False, "nextBefore": None}
    scope = Scope(user_id)
    if group_id is not None:
        await require_member(ctx, group_id, user_id)
        scope = Scope(user_id, group_id=group_id)
    elif recipient_id is not None:
        pair = await chat_queries.conversation_for_pair(ctx.db, *sorted((user_id, recipient_id)))
        if pair is None:
            return empty
        scope = Scope(user_id, conversation_id=pair["id"])
    before_seq = None
    if before is not None:
        # Only a message the user may read: any other id gets the answer an unknown one
        # gets, so the cursor does not tell whether a message exists elsewhere.
        position = await message_changes_queries.message_for_actor(ctx.db, before, user_id)
        if position is None or not access.is_participant(position, user_id):
            raise validation_failed(["before: Not a message."])
        before_seq = position["seq"]
    terms = await ctx.search.terms(ctx.db, text)
    if not terms:
        return empty
    rows = await ctx.search.search(ctx.db, scope, terms, before_seq=before_seq, limit=limit + 1)
    results = [hit_shape(row, terms.words) for row in rows[:limit]]
    await with_attachments(ctx, [hit["message"] for hit in results])
    more = len(rows) > limit
    return {"results": results, "hasMore": more,
            "nextBefore": results[-1]["message"]["id"] if more else None}
