"""Editing and deleting messages. REST (PATCH/DELETE /api/chat/messages/:id) and the /chat
events (`editMessage`, `deleteMessage`) call these same functions.

Each change runs in a transaction that locks the message row, so concurrent changes of one
message apply one after the other (two concurrent edits: both land in the history, the
later one is the content). Events are published after the COMMIT, per chat in commit order.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from ..context import AppContext
from ..errors import bad_request, conflict, forbidden
from ..jsonutil import iso, utcnow
from ..queries import message_changes as message_changes_queries
from . import attachments
from . import message_access as access
from .message_details import detailed_message, for_everyone

MESSAGE_DELETED = "This message was deleted"
MAX_EDITS = 100   # versions kept per message: bounds what GET …/edits can grow to


async def edit_message(ctx: AppContext, user_id: str, message_id: str, content: str) -> dict[str, Any]:
    """The sender replaces the content within ``chat_edit_window_s`` of sending. The same
    content again (a retry) changes nothing and publishes nothing."""
    row = await access.message_for(ctx.db, message_id, user_id)
    window = dt.timedelta(seconds=ctx.settings.chat_edit_window_s)
    async with ctx.chat_cache.locks.hold(access.chat_key(row)):
        async with ctx.db.transaction() as tx:
            row = await access.locked_message_for(tx, message_id, user_id)
            if row["sender_id"] != user_id:
                raise forbidden("You can only edit your own messages")
            if row["deleted_at"] is not None:
                raise conflict(MESSAGE_DELETED)
            now = utcnow()
            if now - row["created_at"] > window:
                raise forbidden("This message can no longer be edited")
            changed = row["content"] != content
            if changed and await message_changes_queries.edit_count(tx, row["seq"]) >= MAX_EDITS:
                raise bad_request(f"A message can be edited at most {MAX_EDITS} times")
            if changed:
                await message_changes_queries.insert_edit(tx, message_seq=row["seq"], content=row["content"],
                                    written_at=row["edited_at"] or row["created_at"], replaced_at=now)
                await message_changes_queries.set_content(tx, row["seq"], content, now)
        message = await detailed_message(ctx, message_id, user_id)
        if changed:
            await ctx.events.publish("messageUpdated", for_everyone(message), access.audience(row))
    return message


async def delete_message(ctx: AppContext, user_id: str, message_id: str) -> dict[str, Any]:
    """The sender deletes their own message; a group's owner or admins any of the group.
    The message stays as a tombstone (empty content, ``deletedAt``, ``deletedBy``); its
    reactions, earlier versions and attachments go. Deleting a tombstone again changes nothing."""
    row = await access.message_for(ctx.db, message_id, user_id)
    async with ctx.chat_cache.locks.hold(access.chat_key(row)):
        async with ctx.db.transaction() as tx:
            row = await access.locked_message_for(tx, message_id, user_id)
            if row["sender_id"] != user_id and not access.is_group_moderator(row):
                raise forbidden("You can only delete your own messages")
            deleted, files = False, []
            if row["deleted_at"] is None:
                now = utcnow()
                await message_changes_queries.tombstone(tx, row["seq"], user_id, now)
                await message_changes_queries.delete_reactions_of(tx, row["seq"])
                await message_changes_queries.delete_edits_of(tx, row["seq"])
                files = await attachments.delete_for_message(tx, message_id)
                deleted = True
        await attachments.remove_files(ctx, files)
        message = await detailed_message(ctx, message_id, user_id)
        if deleted:
            payload = {"messageId": message_id, **access.chat_ids(row), "deletedAt": message["deletedAt"],
                       "deletedBy": user_id}
            await ctx.events.publish("messageDeleted", payload, access.audience(row))
    return message


async def message_edits(ctx: AppContext, user_id: str, message_id: str) -> list[dict[str, Any]]:
    """Every version of a message, oldest first; the last is the current one
    (``replacedAt`` null). A deleted message keeps none."""
    async with ctx.db.transaction() as tx:   # one snapshot: the row and its history agree
        row = await access.message_for(tx, message_id, user_id)
        if row["deleted_at"] is not None:
            return []
        earlier = await message_changes_queries.edits_of(tx, row["seq"])
    versions = [{"content": e["content"], "writtenAt": iso(e["written_at"]), "replacedAt": iso(e["replaced_at"])}
                for e in earlier]
    versions.append({"content": row["content"], "writtenAt": iso(row["edited_at"] or row["created_at"]),
                     "replacedAt": None})
    return versions
