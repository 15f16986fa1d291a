"""Groups (docs/api.md#groups): who may do what, and what each change does."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from nexus_chat.events import GroupDeleted, MembershipChange, UserDeleted

from .support import User, assert_error
from .test_uploads import image_bytes, stored_files

GROUP_KEYS = {"id", "name", "description", "iconUrl", "membersCount", "owner", "myRole", "createdAt", "updatedAt"}


class Recorder:
    """Listens on the events port next to the socket delivery: records the membership
    changes the services publish."""

    def __init__(self, ctx) -> None:
        self.calls: list[tuple] = []
        ctx.events.subscribe(self)

    def __call__(self, record):
        if isinstance(record, MembershipChange):
            self.calls.append(("join" if record.joined else "leave", record.group_id, sorted(record.user_ids)))
        elif isinstance(record, GroupDeleted):
            self.calls.append(("deleted", record.group_id))
        elif isinstance(record, UserDeleted):
            self.calls.append(("disconnect", record.user_id))


@dataclass
class World:
    group_id: str
    owner: User
    admin: User
    member: User
    outsider: User
    extra: User       # a plain member, the target of kicks and promotions
    admin2: User      # a second admin
    newcomer: User    # not in the group, to be invited


async def make_world(api, user_factory) -> World:
    owner, admin, member, outsider, extra, admin2, newcomer = [
        await user_factory(p) for p in ("owner", "admin", "member", "outsider", "extra", "admintwo", "newcomer")]
    created = await api.post("/api/groups", json={"name": "Team", "description": "Our team"}, token=owner.access)
    assert created.status == 201, created.body
    gid = created.data["id"]
    invited = await api.post("/api/groups/invite", token=owner.access,
                             json={"groupId": gid, "memberIds": [admin.id, member.id, extra.id, admin2.id]})
    assert invited.status == 201, invited.body
    for user in (admin, admin2):
        response = await api.put(f"/api/groups/{gid}/members/{user.id}/role", json={"role": "admin"},
                                 token=owner.access)
        assert response.status == 200, response.body
    return World(gid, owner, admin, member, outsider, extra, admin2, newcomer)


def call(api, world: World, route: str, actor: User):
    g, tok = world.group_id, actor.access
    return {
        "invite": lambda: api.post("/api/groups/invite", json={"groupId": g, "memberIds": [world.newcomer.id]}, token=tok),
        "update": lambda: api.patch(f"/api/groups/{g}", json={"name": "Renamed"}, token=tok),
        "kick member": lambda: api.delete(f"/api/groups/{g}/members/{world.extra.id}", token=tok),
        "kick admin": lambda: api.delete(f"/api/groups/{g}/members/{world.admin2.id}", token=tok),
        "kick owner": lambda: api.delete(f"/api/groups/{g}/members/{world.owner.id}", token=tok),
        "delete": lambda: api.delete(f"/api/groups/{g}", token=tok),
        "leave": lambda: api.post(f"/api/groups/{g}/leave", token=tok),
        "promote member": lambda: api.put(f"/api/groups/{g}/members/{world.extra.id}/role", json={"role": "admin"}, token=tok),
        "demote admin": lambda: api.put(f"/api/groups/{g}/members/{world.admin2.id}/role", json={"role": "member"}, token=tok),
        "hand over": lambda: api.put(f"/api/groups/{g}/members/{world.extra.id}/role", json={"role": "owner"}, token=tok),
        "members": lambda: api.get(f"/api/groups/{g}/members", token=tok),
        "create": lambda: api.post("/api/groups", json={"name": "Another"}, token=tok),
        "my groups": lambda: api.get("/api/groups/my-groups", token=tok),
        "profile": lambda: api.get(f"/api/groups/{g}/profile", token=tok),
    }[route]()


#                  route             owner admin member outsider
MATRIX = {
    "invite":         (201, 201, 403, 403),
    "update":         (200, 200, 403, 403),
    "kick member":    (200, 200, 403, 403),
    "kick admin":     (200, 403, 403, 403),
    "kick owner":     (400, 403, 403, 403),
    "delete":         (200, 403, 403, 403),
    "leave":          (400, 200, 200, 404),
    "promote member": (200, 200, 403, 403),
    "demote admin":   (200, 403, 403, 403),
    "hand over":      (200, 403, 403, 403),
    "members":        (200, 200, 200, 403),
    "profile":        (200, 200, 200, 403),
    "create":         (201, 201, 201, 201),   # anyone may create a group
    "my groups":      (200, 200, 200, 200),   # everyone sees their own list
}
GROUP_ROUTES = sorted(set(MATRIX) - {"create", "my groups"})
ACTORS = ("owner", "admin", "member", "outsider")


@pytest.mark.parametrize("route,actor,expected", [
    (route, actor, statuses[i]) for route, statuses in MATRIX.items() for i, actor in enumerate(ACTORS)])
@pytest.mark.gen_test
async def test_authorization_matrix(api, user_factory, route, actor, expected):
    world = await make_world(api, user_factory)
    response = await call(api, world, route, getattr(world, actor))
    if expected >= 400:
        assert_error(response, expected)
    else:
        assert response.status == expected, response.body
        assert response.json["success"] is True
    if route == "my groups":
        listed = world.group_id in {g["id"] for g in response.data}
        assert listed is (actor != "outsider")


@pytest.mark.parametrize("route", GROUP_ROUTES)
@pytest.mark.gen_test
async def test_every_group_route_answers_404_for_a_missing_group(api, user_factory, route):
    world = await make_world(api, user_factory)
    world.group_id = str(uuid.uuid4())
    response = await call(api, world, route, world.owner)
    assert_error(response, 404)


@pytest.mark.gen_test
async def test_bad_group_ids_are_400(api, user_factory):
    me = await user_factory("bad")
    for response in (await api.get("/api/groups/nope/profile", token=me.access),
                     await api.delete("/api/groups/1/members/2", token=me.access),
                     await api.post("/api/groups/invite", json={"groupId": "x", "memberIds": ["y"]}, token=me.access)):
        assert_error(response, 400, "Validation failed")


@pytest.mark.gen_test
async def test_create_group_makes_you_owner(api, user_factory, runtime):
    rec = Recorder(runtime.ctx)
    me = await user_factory("creator")
    response = await api.post("/api/groups", json={"name": "  Book club "}, token=me.access)
    assert response.status == 201
    group = response.data
    assert set(group) == GROUP_KEYS
    assert group["name"] == "Book club" and group["description"] is None and group["iconUrl"] is None
    assert group["myRole"] == "owner" and group["membersCount"] == 1
    assert group["owner"] == {"id": me.id, "username": me.username, "fullName": me.full_name, "avatarUrl": None}
    assert rec.calls == [("join", group["id"], [me.id])]
    for body in ({"name": "ab"}, {"name": "x" * 101}, {"name": "Fine", "description": "ab"}, {}):
        assert_error(await api.post("/api/groups", json=body, token=me.access), 400, "Validation failed")


@pytest.mark.gen_test
async def test_group_icon_upload_and_replacement(api, user_factory, runtime):
    me = await user_factory("icon")
    public = runtime.ctx.public_dir
    created = await api.post("/api/groups", token=me.access, form={"name": "With icon"},
                             files={"icon": ("i.png", image_bytes("PNG"), "image/png")})
    assert created.status == 201, created.body
    old = created.data["iconUrl"]
    assert old.startswith("/uploads/icons/") and (public / old.lstrip("/")).is_file()
    updated = await api.patch(f"/api/groups/{created.data['id']}", token=me.access,
                              files={"icon": ("i.jpg", image_bytes("JPEG"), "image/jpeg")})
    assert updated.status == 200 and updated.data["name"] == "With icon"
    assert not (public / old.lstrip("/")).exists()
    assert stored_files(public, "icons") == [public / updated.data["iconUrl"].lstrip("/")]
    refused = await api.patch(f"/api/groups/{created.data['id']}", token=me.access,
                              files={"icon": ("i.png", b"not an image", "image/png")})
    assert_error(refused, 400)
    assert len(stored_files(public, "icons")) == 1


@pytest.mark.gen_test
async def test_invite_counts_and_errors(api, user_factory, runtime):
    owner, a, b = [await user_factory(p) for p in ("own", "a", "b")]
    gid = (await api.post("/api/groups", json={"name": "Invites"}, token=owner.access)).data["id"]
    rec = Recorder(runtime.ctx)
    first = await api.post("/api/groups/invite", json={"groupId": gid, "memberIds": [a.id]}, token=owner.access)
    assert first.status == 201 and first.data == {"count": 1, "skippedCount": 0}
    second = await api.post("/api/groups/invite", json={"groupId": gid, "memberIds": [a.id, b.id, owner.id]},
                            token=owner.access)
    assert second.data == {"count": 1, "skippedCount": 2}
    assert rec.calls == [("join", gid, [a.id]), ("join", gid, [b.id])]
    assert_error(await api.post("/api/groups/invite", json={"groupId": gid, "memberIds": [a.id, b.id]},
                                token=owner.access), 409, "All specified members are already in the group.")
    missing = str(uuid.uuid4())
    assert_error(await api.post("/api/groups/invite", json={"groupId": gid, "memberIds": [missing]},
                                token=owner.access), 404)
    newcomer = await user_factory("new")
    assert_error(await api.post("/api/groups/invite", json={"groupId": gid, "memberIds": [newcomer.id, missing]},
                                token=owner.access), 404)
    assert (await api.get(f"/api/groups/{gid}/profile", token=owner.access)).data["membersCount"] == 3
    for ids in ([], [str(uuid.uuid4()) for _ in range(101)]):
        assert_error(await api.post("/api/groups/invite", json={"groupId": gid, "memberIds": ids},
                                    token=owner.access), 400, "Validation failed")


@pytest.mark.gen_test
async def test_handing_over_ownership(api, user_factory):
    world = await make_world(api, user_factory)
    g = world.group_id
    response = await api.put(f"/api/groups/{g}/members/{world.member.id}/role", json={"role": "owner"},
                             token=world.owner.access)
    assert response.status == 200
    assert response.data["role"] == "owner" and response.data["user"]["id"] == world.member.id
    roles = {m["user"]["id"]: m["role"] for m in (await api.get(f"/api/groups/{g}/members", token=world.member.access)).data}
    assert roles[world.member.id] == "owner" and roles[world.owner.id] == "admin"
    assert list(roles.values()).count("owner") == 1
    profile = (await api.get(f"/api/groups/{g}/profile", token=world.owner.access)).data
    assert profile["owner"]["id"] == world.member.id and profile["myRole"] == "admin"
    # The old owner is now an admin and may no longer delete the group.
    assert_error(await api.delete(f"/api/groups/{g}", token=world.owner.access), 403)


@pytest.mark.gen_test
async def test_role_rules(api, user_factory):
    world = await make_world(api, user_factory)
    g = world.group_id
    path = f"/api/groups/{g}/members/{world.extra.id}/role"
    assert_error(await api.put(path, json={"role": "superuser"}, token=world.owner.access), 400, "Validation failed")
    assert_error(await api.put(path, json={}, token=world.owner.access), 400)
    # The owner cannot change their own role (they hand over instead).
    assert_error(await api.put(f"/api/groups/{g}/members/{world.owner.id}/role", json={"role": "member"},
                               token=world.owner.access), 400)
    # An admin may only promote a member to admin: not demote, not make owners, not touch themselves.
    assert_error(await api.put(path, json={"role": "owner"}, token=world.admin.access), 403)
    assert_error(await api.put(f"/api/groups/{g}/members/{world.admin.id}/role", json={"role": "member"},
                               token=world.admin.access), 403)
    assert (await api.put(path, json={"role": "admin"}, token=world.admin.access)).data["role"] == "admin"
    assert_error(await api.put(path, json={"role": "member"}, token=world.admin.access), 403)
    assert (await api.put(path, json={"role": "member"}, token=world.owner.access)).data["role"] == "member"
    assert_error(await api.put(f"/api/groups/{g}/members/{world.outsider.id}/role", json={"role": "admin"},
                               token=world.owner.access), 404)


@pytest.mark.gen_test
async def test_kick_and_leave_leave_the_live_room(api, user_factory, runtime):
    world = await make_world(api, user_factory)
    g = world.group_id
    rec = Recorder(runtime.ctx)
    assert (await api.delete(f"/api/groups/{g}/members/{world.extra.id}", token=world.admin.access)).status == 200
    assert (await api.post(f"/api/groups/{g}/leave", token=world.member.access)).status == 200
    assert rec.calls == [("leave", g, [world.extra.id]), ("leave", g, [world.member.id])]
    assert_error(await api.get(f"/api/groups/{g}/members", token=world.extra.access), 403)
    assert_error(await api.post(f"/api/groups/{g}/leave", token=world.member.access), 404)
    assert_error(await api.delete(f"/api/groups/{g}/members/{world.member.id}", token=world.owner.access), 404)
    assert_error(await api.post(f"/api/groups/{g}/leave", token=world.owner.access), 400)


@pytest.mark.gen_test
async def test_last_member_owner_leaving_deletes_the_group(api, user_factory, runtime):
    me = await user_factory("alone")
    gid = (await api.post("/api/groups", token=me.access, form={"name": "Solo"},
                          files={"icon": ("i.png", image_bytes(), "image/png")})).data["id"]
    rec = Recorder(runtime.ctx)
    assert (await api.post(f"/api/groups/{gid}/leave", token=me.access)).status == 200
    assert rec.calls == [("deleted", gid)]
    assert await runtime.db.fetch_one("SELECT id FROM chat_groups WHERE id = %s", (gid,)) is None
    assert stored_files(runtime.ctx.public_dir, "icons") == []


@pytest.mark.gen_test
async def test_deleting_a_group_removes_messages_memberships_and_icon(api, user_factory, runtime):
    world = await make_world(api, user_factory)
    g = world.group_id
    await api.patch(f"/api/groups/{g}", token=world.owner.access,
                    files={"icon": ("i.png", image_bytes(), "image/png")})
    await runtime.db.execute(
        "INSERT INTO messages (id, group_id, sender_id, content, created_at, updated_at)"
        " VALUES (%s, %s, %s, 'hello', NOW(3), NOW(3))", (str(uuid.uuid4()), g, world.member.id))
    rec = Recorder(runtime.ctx)
    assert (await api.delete(f"/api/groups/{g}", token=world.owner.access)).status == 200
    assert rec.calls == [("deleted", g)]
    for table in ("chat_groups WHERE id", "group_members WHERE group_id", "messages WHERE group_id"):
        row = await runtime.db.fetch_one(f"SELECT COUNT(*) AS n FROM {table} = %s", (g,))
        assert row["n"] == 0, table
    assert stored_files(runtime.ctx.public_dir, "icons") == []
    assert_error(await api.get(f"/api/groups/{g}/profile", token=world.owner.access), 404)


@pytest.mark.gen_test
async def test_my_groups_newest_first_with_my_role(api, user_factory):
    me, other = await user_factory("me"), await user_factory("other")
    first = (await api.post("/api/groups", json={"name": "First"}, token=me.access)).data
    second = (await api.post("/api/groups", json={"name": "Second"}, token=other.access)).data
    await api.post("/api/groups/invite", json={"groupId": second["id"], "memberIds": [me.id]}, token=other.access)
    mine = (await api.get("/api/groups/my-groups", token=me.access)).data
    assert [(g["id"], g["myRole"], g["membersCount"]) for g in mine] == [
        (second["id"], "member", 2), (first["id"], "owner", 1)]
    assert mine[0]["owner"]["id"] == other.id


@pytest.mark.gen_test
async def test_members_list_shape(api, user_factory):
    world = await make_world(api, user_factory)
    members = (await api.get(f"/api/groups/{world.group_id}/members", token=world.member.access)).data
    assert len(members) == 5
    assert members[0]["role"] == "owner" and members[0]["user"]["id"] == world.owner.id
    for m in members:
        assert set(m) == {"role", "joinedAt", "user"}
        assert set(m["user"]) == {"id", "username", "fullName", "avatarUrl"}
