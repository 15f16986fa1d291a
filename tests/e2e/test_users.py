"""Users (docs/api.md#users): finding people, and editing your own profile."""
from __future__ import annotations

import uuid

import pytest

from .support import assert_error
from .test_uploads import image_bytes

PUBLIC_KEYS = {"id", "username", "fullName", "avatarUrl", "bio", "status", "lastSeenAt"}


@pytest.mark.gen_test
async def test_search_matches_username_or_full_name_case_insensitively(api, user_factory):
    tag = uuid.uuid4().hex[:6]
    me = await user_factory("seeker")
    by_name = await user_factory("alpha", username=f"zed{tag}", fullName=f"Quentin Q{tag}X")
    by_user = await user_factory("beta", username=f"qq{tag}x")
    response = await api.get("/api/users/search", params={"q": f"Q{tag}".upper()}, token=me.access)
    assert response.status == 200
    found = {u["id"]: u for u in response.data}
    assert set(found) == {by_name.id, by_user.id}
    for user in found.values():
        assert set(user) == PUBLIC_KEYS | {"isVerified", "isContact"}
        assert user["isVerified"] is True and user["isContact"] is False
        assert user["avatarUrl"] is None and user["bio"] is None


@pytest.mark.gen_test
async def test_search_never_returns_yourself_and_flags_contacts(api, user_factory):
    tag = uuid.uuid4().hex[:6]
    me = await user_factory("me", username=f"self{tag}")
    friend = await user_factory("fr", username=f"self{tag}_friend")
    await api.post("/api/contacts", json={"contactUserId": friend.id}, token=me.access)
    response = await api.get("/api/users/search", params={"q": f"self{tag}"}, token=me.access)
    assert [(u["id"], u["isContact"]) for u in response.data] == [(friend.id, True)]


@pytest.mark.gen_test
async def test_search_wildcards_are_literal_and_results_are_capped(api, user_factory):
    me = await user_factory("wild")
    for q in ("%%%", "___", "\\\\\\", "a%_"):
        response = await api.get("/api/users/search", params={"q": q}, token=me.access)
        assert response.status == 200
        assert all(q in u["username"] or q.lower() in u["fullName"].lower() for u in response.data)
    tag = uuid.uuid4().hex[:6]
    await user_factory("under", username=f"lit_{tag}")
    await user_factory("under", username=f"litx{tag}")
    response = await api.get("/api/users/search", params={"q": f"lit_{tag}"}, token=me.access)
    assert [u["username"] for u in response.data] == [f"lit_{tag}"]
    response = await api.get("/api/users/search", params={"q": "u_"}, token=me.access)
    assert response.status == 400  # under 3 characters
    response = await api.get("/api/users/search", params={"q": "_"}, token=me.access)
    assert_error(response, 400, "Validation failed")


@pytest.mark.gen_test
async def test_search_returns_at_most_twenty(api, user_factory, runtime):
    me = await user_factory("many")
    tag = uuid.uuid4().hex[:6]
    for i in range(22):   # rows straight in the database: 22 registrations would be slow
        await runtime.db.execute(
            "INSERT INTO users (id, username, full_name, email, password_hash, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, 'x', NOW(3), NOW(3))",
            (str(uuid.uuid4()), f"crowd{tag}{i}", f"Crowd {i}", f"crowd{tag}{i}@example.test"))
    response = await api.get("/api/users/search", params={"q": f"crowd{tag}"}, token=me.access)
    assert len(response.data) == 20


@pytest.mark.gen_test
async def test_search_requires_authentication(api):
    assert_error(await api.get("/api/users/search", params={"q": "abc"}), 401, "Authentication token missing")


@pytest.mark.gen_test
async def test_profile_update_by_json(api, user_factory):
    me = await user_factory("prof")
    new_name = f"renamed_{uuid.uuid4().hex[:8]}"
    response = await api.patch("/api/users/profile", token=me.access,
                               json={"username": new_name, "fullName": "  New Name ", "bio": "Hello"})
    assert response.status == 200, response.body
    user = response.data
    assert (user["username"], user["fullName"], user["bio"]) == (new_name, "New Name", "Hello")
    assert user["email"] == me.email and user["isVerified"] is True
    response = await api.patch("/api/users/profile", token=me.access, json={"bio": ""})
    assert response.data["bio"] is None and response.data["username"] == new_name
    me_now = await api.get("/api/auth/me", token=me.access)
    assert me_now.data["bio"] is None and me_now.data["fullName"] == "New Name"


@pytest.mark.gen_test
async def test_profile_validation(api, user_factory):
    me = await user_factory("val")
    for body in ({"username": "a b"}, {"username": "ab"}, {"fullName": ""}, {"bio": "x" * 501},
                 {"email": "x@example.test"}, {"fullName": 5}):
        assert_error(await api.patch("/api/users/profile", token=me.access, json=body), 400, "Validation failed")


@pytest.mark.gen_test
async def test_taken_username_is_409_and_leaves_no_avatar_behind(api, user_factory, runtime):
    me = await user_factory("dup")
    other = await user_factory("taken")
    avatars = runtime.ctx.public_dir / "uploads" / "avatars"
    response = await api.patch("/api/users/profile", token=me.access, form={"username": other.username},
                               files={"avatar": ("a.png", image_bytes("PNG"), "image/png")})
    assert_error(response, 409, "Username is already taken")
    assert not avatars.exists() or list(avatars.iterdir()) == []
    # Case-insensitive, like registration.
    response = await api.patch("/api/users/profile", token=me.access, json={"username": other.username.upper()})
    assert_error(response, 409, "Username is already taken")
    # Keeping your own username is fine.
    response = await api.patch("/api/users/profile", token=me.access, json={"username": me.username})
    assert response.status == 200


@pytest.mark.gen_test
async def test_avatar_upload_replaces_and_removes_the_old_file(api, user_factory, runtime):
    me = await user_factory("ava")
    public = runtime.ctx.public_dir
    first = await api.patch("/api/users/profile", token=me.access, form={"bio": "with avatar"},
                            files={"avatar": ("me.jpg", image_bytes("JPEG"), "image/jpeg")})
    assert first.status == 200, first.body
    url = first.data["avatarUrl"]
    assert url.startswith("/uploads/avatars/") and url.endswith(".jpg")
    assert "me.jpg" not in url
    assert (public / url.lstrip("/")).is_file()
    served = await api.get(f"/api/public{url}")
    assert served.status == 200 and served.headers["Content-Type"] == "image/jpeg"
    second = await api.patch("/api/users/profile", token=me.access,
                             files={"avatar": ("x.png", image_bytes("WEBP"), "image/png")})
    assert second.data["avatarUrl"].endswith(".webp")   # decided by content, not by name
    assert not (public / url.lstrip("/")).exists()
    assert (public / second.data["avatarUrl"].lstrip("/")).is_file()
    assert second.data["bio"] == "with avatar"
