"""Groups (docs/api.md#groups). Roles: owner > admin > member, exactly one owner per group.

Every change runs in a transaction that first locks the group row, so concurrent role
changes, kicks and departures of one group are applied one after the other. The live
Socket.IO rooms learn of membership changes from the events port, after the commit."""
from __future__ import annotations

import uuid
from typing import Any

from .. import uploads
from ..context import AppContext
from ..db import Row
from ..errors import bad_request, conflict, forbidden, not_found
from ..jsonutil import iso, utcnow
from ..queries import groups, users
from ..shapes import user_short

OWNER, ADMIN, MEMBER = "owner", "admin", "member"
GROUP_NOT_FOUND = "Group not found"
NOT_A_MEMBER = "You are not a member of this group"
MEMBER_NOT_FOUND = "Member not found"
KEEP = ...  # "leave this field as it is"


def group_shape(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "iconUrl": row["icon_url"] or None,
        "membersCount": int(row["members_count"]),
        "owner": user_short(row, "owner_"),
        "myRole": row["my_role"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }


def member_shape(row: Row) -> dict[str, Any]:
    return {"role": row["role"], "joinedAt": iso(row["joined_at"]), "user": user_short(row, "user_")}


async def _group(ctx: AppContext, group_id: str, user_id: str) -> dict[str, Any]:
    row = await groups.group_for_viewer(ctx.db, group_id, user_id)
    if row is None:
        raise not_found(GROUP_NOT_FOUND)
    return group_shape(row)


async def _lock(tx, group_id: str, user_id: str) -> tuple[Row, str | None]:
    group = await groups.lock_group(tx, group_id)
    if group is None:
        raise not_found(GROUP_NOT_FOUND)
    return group, await groups.member_role(tx, group_id, user_id)


async def _save_icon(ctx: AppContext, icon: uploads.Source | None) -> str | None:
    if icon is None:
        return None
    return await uploads.save_image(ctx.media, ctx.public_dir, uploads.ICONS, "icon", icon, uploads.ICON_MAX,
                                    ctx.settings.uploads_image_max_px)


async def create(ctx: AppContext, user_id: str, *, name: str, description: str | None,
                 icon: uploads.Source | None) -> dict[str, Any]:
    icon_url = await _save_icon(ctx, icon)
    group_id = str(uuid.uuid4())
    now = utcnow()
    try:
        async with ctx.db.transaction() as tx:
            await groups.insert_group(tx, group_id=group_id, name=name, description=description,
                                      icon_url=icon_url, owner_id=user_id, now=now)
            await groups.insert_members(tx, group_id, [user_id], OWNER, now)
    except BaseException:
        await uploads.remove(ctx.public_dir, icon_url)
        raise
    await ctx.events.join_group(group_id, [user_id])
    return await _group(ctx, group_id, user_id)


async def invite(ctx: AppContext, user_id: str, group_id: str, member_ids: list[str]) -> dict[str, int]:
    wanted = list(dict.fromkeys(member_ids))
    async with ctx.db.transaction() as tx:
        _, role = await _lock(tx, group_id, user_id)
        if role not in (OWNER, ADMIN):
            raise forbidden("Only the group owner or an admin can invite members")
        existing = await users.users_existing(tx, wanted)
        if len(existing) != len(wanted):
            raise not_found("User not found")
        already = await groups.members_among(tx, group_id, wanted)
        newcomers = [m for m in wanted if m not in already]
        if not newcomers:
            raise conflict("All specified members are already in the group.")
        added = await groups.insert_members(tx, group_id, newcomers, MEMBER, utcnow())
    await ctx.events.join_group(group_id, newcomers)
    return {"count": added, "skippedCount": len(wanted) - added}


async def update(ctx: AppContext, user_id: str, group_id: str, *, name: str | None = None,
                 description: Any = KEEP, icon: uploads.Source | None = None) -> dict[str, Any]:
    # Checked before the upload is stored, and again under the lock.
    row = await groups.group_for_viewer(ctx.db, group_id, user_id)
    if row is None:
        raise not_found(GROUP_NOT_FOUND)
    if row["my_role"] not in (OWNER, ADMIN):
        raise forbidden("Only the group owner or an admin can update the group")
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if description is not KEEP:
        changes["description"] = description
    icon_url = await _save_icon(ctx, icon)
    if icon_url:
        changes["icon_url"] = icon_url
    try:
        async with ctx.db.transaction() as tx:
            locked, role = await _lock(tx, group_id, user_id)
            if role not in (OWNER, ADMIN):
                raise forbidden("Only the group owner or an admin can update the group")
            await groups.update_group(tx, group_id, changes, utcnow())
    except BaseException:
        await uploads.remove(ctx.public_dir, icon_url)
        raise
    if icon_url and locked["icon_url"]:
        await uploads.remove(ctx.public_dir, locked["icon_url"])
    return await _group(ctx, group_id, user_id)


async def kick(ctx: AppContext, user_id: str, group_id: str, member_id: str) -> None:
    async with ctx.db.transaction() as tx:
        _, role = await _lock(tx, group_id, user_id)
        if role is None:
            raise forbidden(NOT_A_MEMBER)
        if member_id == user_id:
            raise bad_request("You cannot kick yourself; leave the group instead")
        if role == MEMBER:
            raise forbidden("Only the group owner or an admin can remove members")
        target = await groups.member_role(tx, group_id, member_id)
        if target is None:
            raise not_found(MEMBER_NOT_FOUND)
        if role == ADMIN and target != MEMBER:
            raise forbidden("Admins can only remove members")
        await groups.delete_member(tx, group_id, member_id)
    await ctx.events.leave_group(group_id, [member_id])


async def delete(ctx: AppContext, user_id: str, group_id: str) -> None:
    async with ctx.db.transaction() as tx:
        group, role = await _lock(tx, group_id, user_id)
        if role != OWNER:
            raise forbidden("Only the group owner can delete the group")
        await groups.delete_group(tx, group_id)
    await _after_group_deleted(ctx, group_id, group["icon_url"])


async def _after_group_deleted(ctx: AppContext, group_id: str, icon_url: str | None) -> None:
    await ctx.events.group_deleted(group_id)
    await uploads.remove(ctx.public_dir, icon_url)


async def leave(ctx: AppContext, user_id: str, group_id: str) -> bool:
    """True when the group was deleted (its owner was the last member)."""
    async with ctx.db.transaction() as tx:
        group, role = await _lock(tx, group_id, user_id)
        if role is None:
            raise not_found(NOT_A_MEMBER)
        deleted = False
        if role == OWNER:
            if await groups.member_count(tx, group_id) > 1:
                raise bad_request("The owner must transfer ownership before leaving the group")
            await groups.delete_group(tx, group_id)
            deleted = True
        else:
            await groups.delete_member(tx, group_id, user_id)
    if deleted:
        await _after_group_deleted(ctx, group_id, group["icon_url"])
    else:
        await ctx.events.leave_group(group_id, [user_id])
    return deleted


async def change_role(ctx: AppContext, user_id: str, group_id: str, member_id: str,
                      new_role: str) -> dict[str, Any]:
    async with ctx.db.transaction() as tx:
        _, role = await _lock(tx, group_id, user_id)
        if role not in (OWNER, ADMIN):
            raise forbidden("Only the group owner or an admin can change roles")
        target = await groups.member_role(tx, group_id, member_id)
        if target is None:
            raise not_found(MEMBER_NOT_FOUND)
        if role == OWNER:
            if member_id == user_id:
                raise bad_request("You cannot change your own role; make another member the owner")
            if new_role == OWNER:  # hand over: the old owner stays on as admin
                await groups.set_member_role(tx, group_id, member_id, OWNER)
                await groups.set_member_role(tx, group_id, user_id, ADMIN)
                await groups.set_group_owner(tx, group_id, member_id, utcnow())
            else:
                await groups.set_member_role(tx, group_id, member_id, new_role)
        else:
            if not (target == MEMBER and new_role == ADMIN and member_id != user_id):
                raise forbidden("Admins can only promote members to admin")
            await groups.set_member_role(tx, group_id, member_id, ADMIN)
    return member_shape(await groups.member_with_user(ctx.db, group_id, member_id))


async def my_groups(ctx: AppContext, user_id: str) -> list[dict[str, Any]]:
    return [group_shape(row) for row in await groups.groups_of_member(ctx.db, user_id)]


async def _as_member(ctx: AppContext, group_id: str, user_id: str) -> Row:
    row = await groups.group_for_viewer(ctx.db, group_id, user_id)
    if row is None:
        raise not_found(GROUP_NOT_FOUND)
    if row["my_role"] is None:
        raise forbidden(NOT_A_MEMBER)
    return row


async def members(ctx: AppContext, user_id: str, group_id: str) -> list[dict[str, Any]]:
    await _as_member(ctx, group_id, user_id)
    return [member_shape(row) for row in await groups.members_of(ctx.db, group_id)]


async def profile(ctx: AppContext, user_id: str, group_id: str) -> dict[str, Any]:
    return group_shape(await _as_member(ctx, group_id, user_id))
