"""Deleting an account (docs/api.md#deleting-an-account).

In one transaction: each group the user owns passes to its longest-standing admin, else its
longest-standing member, or is deleted when nobody else is left; the user's 1-on-1
conversations (with their messages) and stories go; then the user row, whose foreign keys
remove sessions, contacts in both directions, memberships, story views and used tokens,
and turn their messages in surviving groups into ``senderId: null``. Files (avatar, story
media, icons of deleted groups, the user's attachments) are removed after the commit.
"""
from __future__ import annotations

from .. import uploads
from ..context import AppContext
from ..errors import not_found
from ..jsonutil import utcnow
from ..queries import attachments as attachment_queries
from ..queries import groups, stories, users
from ..queries import reactions as reactions_queries
from . import attachments, reactions


async def delete_account(ctx: AppContext, user_id: str) -> None:
    files: list[str | None] = []
    deleted_groups: list[str] = []
    now = utcnow()
    async with ctx.db.transaction() as tx:
        user = await users.user_by_id_for_update(tx, user_id)
        if user is None:
            raise not_found("User not found")
        files.append(user["avatar_url"])
        for group in await groups.groups_owned_by(tx, user_id):
            heir = await groups.successor(tx, group["id"], user_id)
            if heir is None:
                await groups.delete_group(tx, group["id"])
                deleted_groups.append(group["id"])
                files.append(group["icon_url"])
            else:
                await groups.set_member_role(tx, group["id"], heir, "owner")
                await groups.set_group_owner(tx, group["id"], heir, now)
        for story in await stories.media_of_user(tx, user_id):
            files.extend((story["image_url"], story["video_url"]))
        await stories.delete_stories_of_user(tx, user_id)
        # Every file the user uploaded goes with the account (the rows by foreign key); files
        # of others in the deleted conversations and groups are left to the sweeper.
        attachment_ids = await attachment_queries.ids_of_uploader(tx, user_id)
        # The user's reactions go with the account; the summaries on the messages they were
        # on are rewritten without them (a foreign-key cascade would leave them stale).
        reacted = await reactions_queries.reacted_messages(tx, user_id)
        await reactions_queries.delete_reactions_by(tx, user_id)
        await reactions.rewrite_summaries(tx, reacted)
        await users.delete_conversations_of(tx, user_id)
        await users.delete_user(tx, user_id)
    ctx.revoked_users.add(user_id)
    await ctx.events.user_deleted(user_id)
    for group_id in deleted_groups:
        await ctx.events.group_deleted(group_id)
    await uploads.remove(ctx.public_dir, *files)
    await attachments.remove_files(ctx, attachment_ids)
