"""Deleting an account (docs/api.md#deleting-an-account): everything that was only theirs
goes, groups live on under a new owner, and nothing is left behind in the database or on disk."""
from __future__ import annotations

import uuid

import pytest

from .support import assert_error
from .test_groups import Recorder
from .test_stories import befriend, post_story
from .test_uploads import image_bytes, stored_files


async def new_group(api, owner, name, members=(), admins=(), icon=False):
    files = {"icon": ("i.png", image_bytes(), "image/png")} if icon else None
    created = await api.post("/api/groups", token=owner.access, form={"name": name}, files=files)
    gid = created.data["id"]
    for user in members:  # one at a time: joined_at orders them
        await api.post("/api/groups/invite", json={"groupId": gid, "memberIds": [user.id]}, token=owner.access)
    for user in admins:
        await api.put(f"/api/groups/{gid}/members/{user.id}/role", json={"role": "admin"}, token=owner.access)
    return gid


async def insert_conversation(db, a, b, *senders):
    conv = str(uuid.uuid4())
    low, high = sorted((a.id, b.id))
    await db.execute(
        "INSERT INTO conversations (id, creator_id, recipient_id, user_low_id, user_high_id, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, NOW(3), NOW(3))", (conv, a.id, b.id, low, high))
    for sender in senders:
        await db.execute("INSERT INTO messages (id, conversation_id, sender_id, content, created_at, updated_at)"
                         " VALUES (%s, %s, %s, 'hi', NOW(3), NOW(3))", (str(uuid.uuid4()), conv, sender.id))
    return conv


async def insert_group_message(db, gid, sender):
    mid = str(uuid.uuid4())
    await db.execute("INSERT INTO messages (id, group_id, sender_id, content, created_at, updated_at)"
                     " VALUES (%s, %s, %s, 'in the group', NOW(3), NOW(3))", (mid, gid, sender.id))
    return mid


async def count(db, sql, *args) -> int:
    return (await db.fetch_one(f"SELECT COUNT(*) AS n FROM {sql}", args))["n"]


@pytest.mark.gen_test(timeout=20)
async def test_deleting_an_account_leaves_no_orphans(api, user_factory, runtime):
    db, public = runtime.db, runtime.ctx.public_dir
    victim, friend, early, admin, late = [await user_factory(p) for p in ("victim", "friend", "early", "admin", "late")]
    # Avatar, a story with a file, contacts both ways, views both ways.
    await api.patch("/api/users/profile", token=victim.access, files={"avatar": ("a.png", image_bytes(), "image/png")})
    await befriend(api, victim, friend)
    own_story = await post_story(api, victim)
    friends_story = await post_story(api, friend)
    await api.post(f"/api/story/{own_story['id']}/seen", token=friend.access)
    await api.post(f"/api/story/{friends_story['id']}/seen", token=victim.access)
    # A 1-on-1 conversation, and one between two others that must stay.
    conv = await insert_conversation(db, victim, friend, victim, friend)
    other_conv = await insert_conversation(db, friend, early, friend)
    # Groups: with an admin (who joined after a member), with only members, alone (with icon),
    # and someone else's group the victim wrote in.
    with_admin = await new_group(api, victim, "Has admin", members=[early, admin], admins=[admin])
    only_members = await new_group(api, victim, "Members only", members=[early, late])
    alone = await new_group(api, victim, "Alone", icon=True)
    theirs = await new_group(api, friend, "Theirs", members=[victim])
    kept_message = await insert_group_message(db, theirs, victim)
    owned_message = await insert_group_message(db, with_admin, victim)
    assert len(stored_files(public, "avatars")) == 1 and len(stored_files(public, "icons")) == 1

    rec = Recorder(runtime.ctx)
    wrong = await api.delete("/api/auth/delete-account", json={"password": "not-it-1"}, token=victim.access)
    assert_error(wrong, 400, "Invalid password. Account deletion aborted.")
    response = await api.delete("/api/auth/delete-account", json={"password": victim.password}, token=victim.access)
    assert response.status == 200, response.body

    # Nothing of theirs is left.
    v = victim.id
    for table, args in (("users WHERE id = %s", (v,)), ("sessions WHERE user_id = %s", (v,)),
                        ("contacts WHERE owner_id = %s OR contact_user_id = %s", (v, v)),
                        ("stories WHERE user_id = %s", (v,)), ("story_views WHERE viewer_id = %s", (v,)),
                        ("story_views WHERE story_id = %s", (own_story["id"],)),
                        ("conversations WHERE creator_id = %s OR recipient_id = %s", (v, v)),
                        ("messages WHERE conversation_id = %s", (conv,)),
                        ("messages WHERE sender_id = %s", (v,)),
                        ("group_members WHERE user_id = %s", (v,)), ("chat_groups WHERE owner_id = %s", (v,)),
                        ("chat_groups WHERE id = %s", (alone,))):
        assert await count(db, table, *args) == 0, table
    assert stored_files(public, "avatars") == [] and stored_files(public, "icons") == []
    assert stored_files(public, "stories") == [public / friends_story["imageUrl"].lstrip("/")]

    # What belongs to others stays: their story, their conversation, their groups and messages.
    assert await count(db, "conversations WHERE id = %s", other_conv) == 1
    assert await count(db, "stories WHERE id = %s", friends_story["id"]) == 1
    for mid in (kept_message, owned_message):
        row = await db.fetch_one("SELECT sender_id FROM messages WHERE id = %s", (mid,))
        assert row is not None and row["sender_id"] is None
    # Ownership: the longest-standing admin, else the longest-standing member.
    owners = {g: (await db.fetch_one("SELECT owner_id FROM chat_groups WHERE id = %s", (g,)))["owner_id"]
              for g in (with_admin, only_members)}
    assert owners == {with_admin: admin.id, only_members: early.id}
    for gid, heir in owners.items():
        roles = await db.fetch_all("SELECT user_id, role FROM group_members WHERE group_id = %s", (gid,))
        assert [r["user_id"] for r in roles if r["role"] == "owner"] == [heir]
    profile = await api.get(f"/api/groups/{with_admin}/profile", token=admin.access)
    assert profile.data["owner"]["id"] == admin.id and profile.data["myRole"] == "owner"

    assert ("disconnect", v) in rec.calls and ("deleted", alone) in rec.calls
    # The old token no longer works, and the friend's contact list no longer shows them.
    assert_error(await api.get("/api/contacts", token=victim.access), 401)
    assert (await api.get("/api/contacts", token=friend.access)).data == []


@pytest.mark.gen_test
async def test_deleting_a_plain_account(api, user_factory, runtime):
    me = await user_factory("plain")
    response = await api.delete("/api/auth/delete-account", json={"password": me.password}, token=me.access)
    assert response.status == 200
    assert await count(runtime.db, "users WHERE id = %s", me.id) == 0
    login = await api.post("/api/auth/login", json={"email": me.email, "password": me.password})
    assert_error(login, 401)
