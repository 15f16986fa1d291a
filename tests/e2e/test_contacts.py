"""Contacts (docs/api.md#contacts): a private address book."""
from __future__ import annotations

import uuid

import pytest

from .support import assert_error

CONTACT_KEYS = {"id", "alias", "userId", "contactUser", "createdAt", "updatedAt"}


@pytest.mark.gen_test
async def test_add_contact_defaults_alias_to_full_name(api, user_factory):
    me, friend = await user_factory("me"), await user_factory("friend")
    response = await api.post("/api/contacts", json={"contactUserId": friend.id}, token=me.access)
    assert response.status == 201, response.body
    contact = response.data
    assert set(contact) == CONTACT_KEYS
    # As in the old backend: userId is the owner (who saved the contact), contactUser the other.
    assert contact["alias"] == friend.full_name and contact["userId"] == me.id
    assert contact["contactUser"]["id"] == friend.id
    for listed in (await api.get("/api/contacts", token=me.access)).data:
        assert listed["userId"] == me.id and listed["contactUser"]["id"] == friend.id
    one = await api.get(f"/api/contacts/{contact['id']}", token=me.access)
    assert one.data["userId"] == me.id
    assert "email" not in contact["contactUser"]
    assert contact["createdAt"].endswith("Z")


@pytest.mark.gen_test
async def test_add_contact_errors(api, user_factory):
    me, friend = await user_factory("me"), await user_factory("friend")
    assert_error(await api.post("/api/contacts", json={"contactUserId": me.id}, token=me.access),
                 400, "You cannot add yourself as a contact")
    assert_error(await api.post("/api/contacts", json={"contactUserId": str(uuid.uuid4())}, token=me.access),
                 404, "User not found")
    assert_error(await api.post("/api/contacts", json={"contactUserId": "nope"}, token=me.access),
                 400, "Validation failed")
    assert_error(await api.post("/api/contacts", json={"contactUserId": friend.id, "alias": ""},
                                token=me.access), 400, "Validation failed")
    assert (await api.post("/api/contacts", json={"contactUserId": friend.id, "alias": "Pal"},
                           token=me.access)).status == 201
    assert_error(await api.post("/api/contacts", json={"contactUserId": friend.id}, token=me.access),
                 409, "Contact already exists in your list")


@pytest.mark.gen_test
async def test_list_is_ordered_by_alias_and_private(api, user_factory):
    me, a, b, c = [await user_factory(p) for p in ("me", "a", "b", "c")]
    for user, alias in ((a, "Charlie"), (b, "alice"), (c, "Bob")):
        await api.post("/api/contacts", json={"contactUserId": user.id, "alias": alias}, token=me.access)
    response = await api.get("/api/contacts", token=me.access)
    assert [x["alias"] for x in response.data] == ["alice", "Bob", "Charlie"]
    theirs = await api.get("/api/contacts", token=a.access)
    assert theirs.data == []   # they are not told


@pytest.mark.gen_test
async def test_get_rename_delete_and_someone_elses_contact(api, user_factory):
    me, friend, stranger = await user_factory("me"), await user_factory("fr"), await user_factory("st")
    contact = (await api.post("/api/contacts", json={"contactUserId": friend.id}, token=me.access)).data
    path = f"/api/contacts/{contact['id']}"
    assert (await api.get(path, token=me.access)).data == contact
    renamed = await api.put(path, json={"alias": "  Best friend "}, token=me.access)
    assert renamed.status == 200 and renamed.data["alias"] == "Best friend"
    assert_error(await api.put(path, json={}, token=me.access), 400, "Validation failed")
    assert_error(await api.put(path, json={"alias": "x" * 101}, token=me.access), 400)
    for call in (api.get(path, token=stranger.access), api.put(path, json={"alias": "mine"}, token=stranger.access),
                 api.delete(path, token=stranger.access)):
        assert_error(await call, 404, "Contact not found")
    assert (await api.delete(path, token=me.access)).status == 200
    assert_error(await api.get(path, token=me.access), 404, "Contact not found")
    assert_error(await api.delete(path, token=me.access), 404, "Contact not found")


@pytest.mark.gen_test
async def test_bad_contact_ids_are_client_errors(api, user_factory):
    me = await user_factory("me")
    for bad in ("not-a-uuid", "1", "%27%20OR%201%3D1"):
        response = await api.get(f"/api/contacts/{bad}", token=me.access)
        assert response.status in (400, 404)
        assert_error(response, response.status)
