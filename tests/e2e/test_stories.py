"""Stories (docs/api.md#stories): seen only by mutual contacts, gone when they expire."""
from __future__ import annotations

import asyncio

import pytest

from nexus_chat.sweeper import sweep_once

from .support import assert_error
from .test_uploads import image_bytes, stored_files

STORY_KEYS = {"id", "imageUrl", "videoUrl", "caption", "expiresAt", "createdAt", "updatedAt", "user"}


async def befriend(api, a, b, alias_for_b=None, alias_for_a=None):
    """Make a and b mutual contacts (each has the other in their list)."""
    r1 = await api.post("/api/contacts", json={"contactUserId": b.id, **({"alias": alias_for_b} if alias_for_b else {})},
                        token=a.access)
    r2 = await api.post("/api/contacts", json={"contactUserId": a.id, **({"alias": alias_for_a} if alias_for_a else {})},
                        token=b.access)
    assert r1.status == r2.status == 201


async def post_story(api, user, caption="hello", image=True):
    files = {"image": ("s.png", image_bytes(), "image/png")} if image else None
    response = await api.post("/api/story", token=user.access, form={"caption": caption}, files=files)
    assert response.status == 201, response.body
    return response.data


async def expire(runtime, story_id):
    await runtime.db.execute("UPDATE stories SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE id = %s", (story_id,))


@pytest.mark.gen_test
async def test_posting_a_story(api, user_factory, settings):
    me = await user_factory("poster")
    story = await post_story(api, me)
    assert set(story) == STORY_KEYS
    assert story["imageUrl"].startswith("/uploads/stories/") and story["videoUrl"] is None
    assert story["caption"] == "hello"
    assert story["user"] == {"id": me.id, "username": me.username, "fullName": me.full_name, "avatarUrl": None}
    import datetime as dt
    created = dt.datetime.fromisoformat(story["createdAt"].replace("Z", "+00:00"))
    expires = dt.datetime.fromisoformat(story["expiresAt"].replace("Z", "+00:00"))
    assert (expires - created).total_seconds() == settings.stories_ttl_s
    caption_only = await api.post("/api/story", token=me.access, form={"caption": "just words"})
    assert caption_only.status == 201 and caption_only.data["imageUrl"] is None


@pytest.mark.gen_test
async def test_story_validation(api, user_factory, runtime):
    me = await user_factory("val")
    assert_error(await api.post("/api/story", token=me.access, form={"caption": ""}), 400, "Validation failed")
    assert_error(await api.post("/api/story", token=me.access, form={"caption": "x" * 256}), 400, "Validation failed")
    both = {"image": ("a.png", image_bytes(), "image/png"), "video": ("v.mp4", b"\0\0\0\x18ftypisom" + b"\0" * 20, "video/mp4")}
    assert_error(await api.post("/api/story", token=me.access, files=both), 400, "Validation failed")
    assert stored_files(runtime.ctx.public_dir, "stories") == []


@pytest.mark.gen_test
async def test_my_stories_oldest_first_with_view_counts(api, user_factory):
    me, friend = await user_factory("me"), await user_factory("friend")
    await befriend(api, me, friend)
    first = await post_story(api, me, "first", image=False)
    second = await post_story(api, me, "second", image=False)
    assert (await api.post(f"/api/story/{first['id']}/seen", token=friend.access)).status == 200
    assert (await api.post(f"/api/story/{first['id']}/seen", token=friend.access)).status == 200   # idempotent
    assert (await api.post(f"/api/story/{first['id']}/seen", token=me.access)).status == 200       # not counted
    mine = (await api.get("/api/story", token=me.access)).data
    assert [(s["id"], s["viewsCount"]) for s in mine] == [(first["id"], 1), (second["id"], 0)]


@pytest.mark.gen_test
async def test_feed_shows_mutual_contacts_under_my_alias(api, user_factory):
    me, friend, one_way, fan = [await user_factory(p) for p in ("me", "friend", "oneway", "fan")]
    await befriend(api, me, friend, alias_for_b="Bestie")
    # I have one_way in my contacts, they do not have me: not mutual.
    await api.post("/api/contacts", json={"contactUserId": one_way.id}, token=me.access)
    # fan has me, I do not have fan: not mutual either.
    await api.post("/api/contacts", json={"contactUserId": me.id}, token=fan.access)
    s1 = await post_story(api, friend, "one")
    await post_story(api, one_way, "hidden")
    await post_story(api, fan, "hidden too")
    s2 = await post_story(api, friend, "two", image=False)
    feed = (await api.get("/api/story/feed", token=me.access)).data
    assert [s["id"] for s in feed] == [s1["id"], s2["id"]]
    assert all(s["user"]["fullName"] == "Bestie" and s["user"]["id"] == friend.id for s in feed)
    assert [s["seen"] for s in feed] == [False, False]
    await api.post(f"/api/story/{s1['id']}/seen", token=me.access)
    feed = (await api.get("/api/story/feed", token=me.access)).data
    assert [s["seen"] for s in feed] == [True, False]
    assert (await api.get("/api/story/feed", token=fan.access)).data == []


@pytest.mark.gen_test
async def test_a_story_is_invisible_to_a_one_way_contact(api, user_factory):
    owner, follower, stranger = [await user_factory(p) for p in ("owner", "follower", "stranger")]
    await api.post("/api/contacts", json={"contactUserId": owner.id}, token=follower.access)
    story = await post_story(api, owner)
    for viewer in (follower, stranger):
        assert (await api.get("/api/story/feed", token=viewer.access)).data == []
        assert_error(await api.post(f"/api/story/{story['id']}/seen", token=viewer.access), 404, "Story not found")
    assert (await api.get(f"/api/story/{story['id']}/viewers", token=owner.access)).data == []


@pytest.mark.gen_test
async def test_viewers_newest_first_with_my_aliases_owner_only(api, user_factory):
    owner, a, b = [await user_factory(p) for p in ("owner", "a", "b")]
    await befriend(api, owner, a, alias_for_b="Aunt A")
    await befriend(api, owner, b)
    story = await post_story(api, owner)
    await api.post(f"/api/story/{story['id']}/seen", token=a.access)
    await asyncio.sleep(0.01)
    await api.post(f"/api/story/{story['id']}/seen", token=b.access)
    viewers = (await api.get(f"/api/story/{story['id']}/viewers", token=owner.access)).data
    assert [(v["user"]["id"], v["user"]["fullName"]) for v in viewers] == [(b.id, b.full_name), (a.id, "Aunt A")]
    assert all(set(v) == {"seenAt", "user"} and v["seenAt"].endswith("Z") for v in viewers)
    assert_error(await api.get(f"/api/story/{story['id']}/viewers", token=a.access), 403)
    assert_error(await api.get("/api/story/00000000-0000-4000-8000-000000000000/viewers", token=owner.access), 404)
    assert_error(await api.get("/api/story/not-a-uuid/viewers", token=owner.access), 400)


@pytest.mark.gen_test
async def test_deleting_a_story_removes_its_file(api, user_factory, runtime):
    owner, friend = await user_factory("owner"), await user_factory("friend")
    await befriend(api, owner, friend)
    story = await post_story(api, owner)
    path = runtime.ctx.public_dir / story["imageUrl"].lstrip("/")
    assert path.is_file()
    assert_error(await api.delete(f"/api/story/{story['id']}", token=friend.access), 404, "Story not found")
    assert path.is_file()
    assert (await api.delete(f"/api/story/{story['id']}", token=owner.access)).status == 200
    assert not path.exists()
    assert_error(await api.delete(f"/api/story/{story['id']}", token=owner.access), 404)
    assert (await api.get("/api/story", token=owner.access)).data == []


@pytest.mark.gen_test
async def test_expired_stories_are_never_served_and_the_sweep_removes_them(api, user_factory, runtime):
    owner, friend = await user_factory("owner"), await user_factory("friend")
    await befriend(api, owner, friend)
    old, fresh = await post_story(api, owner, "old"), await post_story(api, owner, "fresh")
    await api.post(f"/api/story/{old['id']}/seen", token=friend.access)
    await expire(runtime, old["id"])
    # Between sweeps: invisible everywhere.
    assert [s["id"] for s in (await api.get("/api/story", token=owner.access)).data] == [fresh["id"]]
    assert [s["id"] for s in (await api.get("/api/story/feed", token=friend.access)).data] == [fresh["id"]]
    assert_error(await api.post(f"/api/story/{old['id']}/seen", token=friend.access), 404)
    assert_error(await api.get(f"/api/story/{old['id']}/viewers", token=owner.access), 404)
    old_file = runtime.ctx.public_dir / old["imageUrl"].lstrip("/")
    assert old_file.is_file()
    removed = await sweep_once(runtime.ctx)
    assert removed["stories"] >= 1
    assert not old_file.exists()
    assert (runtime.ctx.public_dir / fresh["imageUrl"].lstrip("/")).is_file()
    assert await runtime.db.fetch_one("SELECT id FROM stories WHERE id = %s", (old["id"],)) is None
    assert await runtime.db.fetch_one("SELECT story_id FROM story_views WHERE story_id = %s", (old["id"],)) is None


@pytest.mark.parametrize("setting_overrides", [{"stories_ttl_s": 1, "stories_sweep_s": 1}])
@pytest.mark.gen_test(timeout=15)
async def test_the_periodic_sweeper_deletes_a_one_second_story(api, user_factory, runtime):
    me = await user_factory("brief")
    story = await post_story(api, me)
    path = runtime.ctx.public_dir / story["imageUrl"].lstrip("/")
    assert path.is_file()
    for _ in range(60):   # expires after 1 s, swept within the next second
        if not path.exists():
            break
        await asyncio.sleep(0.1)
    assert not path.exists()
    assert await runtime.db.fetch_one("SELECT id FROM stories WHERE id = %s", (story["id"],)) is None
