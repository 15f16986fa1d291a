"""The account lifecycle, docs/api.md#auth: every route, its success and its errors."""
from __future__ import annotations

import pytest

from .support import assert_error, link_in, new_identity, register, token_of

USER_KEYS = {"id", "username", "fullName", "email", "avatarUrl", "bio", "emailVerifiedAt", "isVerified",
             "status", "lastSeenAt", "createdAt", "updatedAt",
             "sendReadReceipts"}   # added by the message lifecycle (issue 12)


# ---- register ---------------------------------------------------------------------------
@pytest.mark.gen_test
async def test_register_returns_the_user_and_queues_a_verification_mail(api, mail_sink):
    identity, response = await register(api)
    assert response.status == 201
    body = response.json
    assert body["message"] == "Registration successful. Please check your email to verify your account."
    user = body["data"]
    assert set(user) == USER_KEYS
    assert user["username"] == identity["username"] and user["email"] == identity["email"]
    assert user["isVerified"] is False and user["emailVerifiedAt"] is None
    assert user["avatarUrl"] is None and user["bio"] is None and user["status"] == "offline"
    assert "password" not in response.body.decode()
    mail = await mail_sink.wait_for(identity["email"])
    assert mail["Subject"] == "Verify your Nexus Chat account"
    assert mail.get_body(("html",)) is not None, "an HTML alternative is sent"
    link = link_in(mail)
    assert link.startswith("http://localhost:3000/api/auth/verify-email?token=")


@pytest.mark.gen_test
async def test_register_refuses_a_taken_username_or_email_case_insensitively(api):
    identity, first = await register(api)
    assert first.status == 201
    again_name = {**new_identity(), "username": identity["username"].upper()}
    assert_error(await api.post("/api/auth/register", json=again_name), 409, "Username or Email already exists")
    again_mail = {**new_identity(), "email": identity["email"].upper()}
    assert_error(await api.post("/api/auth/register", json=again_mail), 409, "Username or Email already exists")


@pytest.mark.gen_test
async def test_register_validation_lists_each_problem(api):
    response = await api.post("/api/auth/register", json={
        "username": "a b", "fullName": "", "email": "not-an-email", "password": "123", "role": "admin"})
    body = assert_error(response, 400, "Validation failed")
    fields = sorted(e.split(":")[0] for e in body["errors"])
    assert fields == ["email", "fullName", "password", "role", "username"]
    assert "role: Unknown field." in body["errors"]


@pytest.mark.gen_test
async def test_password_over_72_bytes_is_a_400_not_a_crash(api):
    identity = new_identity()
    identity["password"] = "é" * 37  # 37 characters, 74 bytes
    body = assert_error(await api.post("/api/auth/register", json=identity), 400, "Validation failed")
    assert body["errors"] == ["password: Must be at most 72 bytes in UTF-8."]


# ---- verify e-mail ---------------------------------------------------------------------
@pytest.mark.gen_test
async def test_verification_link_redirects_and_verifies_once_and_again(api, mail_sink):
    identity, _ = await register(api)
    link = link_in(await mail_sink.wait_for(identity["email"]))
    token = token_of(link)
    first = await api.get("/api/auth/verify-email", params={"token": token})
    assert first.status == 302
    assert first.headers["Location"] == "http://localhost:3001/auth/verify-email?status=success"
    again = await api.get("/api/auth/verify-email", params={"token": token})
    assert again.headers["Location"].endswith("status=success"), "already verified is a success"


@pytest.mark.gen_test
async def test_bad_or_wrong_type_verification_tokens_fail(api, user_factory):
    user = await user_factory()
    for token in ("garbage", "", user.access, user.refresh):
        response = await api.get("/api/auth/verify-email", params={"token": token})
        assert response.status == 302
        assert response.headers["Location"] == \
            "http://localhost:3001/auth/verify-email?status=failed&code=INVALID_TOKEN"


# ---- login / me / logout ------------------------------------------------------------------
@pytest.mark.gen_test
async def test_login_gives_tokens_and_me_returns_the_user(api, user_factory):
    user = await user_factory()
    login = await api.post("/api/auth/login", json={"email": user.email.upper(), "password": user.password})
    assert login.status == 200 and login.message == "Login successful"
    assert set(login.data) == {"accessToken", "refreshToken", "userId", "expiresIn"}
    assert login.data["expiresIn"] == 3600 and login.data["userId"] == user.id
    me = await api.get("/api/auth/me", token=login.data["accessToken"])
    assert me.status == 200
    assert me.data["id"] == user.id and me.data["isVerified"] is True
    assert me.data["emailVerifiedAt"].endswith("Z")


@pytest.mark.gen_test
async def test_login_failures_do_not_tell_which_part_was_wrong(api, user_factory):
    user = await user_factory()
    wrong = await api.post("/api/auth/login", json={"email": user.email, "password": "wrong-password"})
    unknown = await api.post("/api/auth/login", json={"email": "nobody@example.test", "password": "whatever1"})
    assert_error(wrong, 401, "Invalid email or password")
    assert_error(unknown, 401, "Invalid email or password")


@pytest.mark.gen_test
async def test_unverified_account_is_refused_only_after_a_correct_password(api):
    identity, _ = await register(api)
    wrong = await api.post("/api/auth/login", json={"email": identity["email"], "password": "not-it-123"})
    assert_error(wrong, 401, "Invalid email or password")
    right = await api.post("/api/auth/login", json={"email": identity["email"], "password": identity["password"]})
    assert_error(right, 403, "Please verify your email address first")


@pytest.mark.gen_test
async def test_me_requires_a_valid_access_token(api, user_factory):
    user = await user_factory()
    assert_error(await api.get("/api/auth/me"), 401, "Authentication token missing")
    assert_error(await api.get("/api/auth/me", token="not.a.jwt"), 401, "Invalid or expired token")
    assert_error(await api.get("/api/auth/me", token=user.refresh), 401, "Invalid or expired token")
    response = await api.get("/api/auth/me", headers={"Authorization": f"Basic {user.access}"})
    assert_error(response, 401, "Authentication token missing")


@pytest.mark.gen_test
async def test_logout_revokes_only_this_session(api, user_factory):
    user = await user_factory()
    other = await api.post("/api/auth/login", json={"email": user.email, "password": user.password})
    out = await api.post("/api/auth/logout", token=user.access)
    assert out.status == 200 and out.data is None
    assert_error(await api.post("/api/auth/refresh", json={"refreshToken": user.refresh}), 401,
                 "Refresh token expired or invalid")
    still = await api.post("/api/auth/refresh", json={"refreshToken": other.data["refreshToken"]})
    assert still.status == 200
    assert_error(await api.post("/api/auth/logout"), 401)


# ---- refresh -----------------------------------------------------------------------------
@pytest.mark.gen_test
async def test_refresh_rotates_the_token(api, user_factory):
    user = await user_factory()
    first = await api.post("/api/auth/refresh", json={"refreshToken": user.refresh, "userId": user.id})
    assert first.status == 200
    assert first.data["refreshToken"] != user.refresh
    me = await api.get("/api/auth/me", token=first.data["accessToken"])
    assert me.status == 200
    second = await api.post("/api/auth/refresh", json={"refreshToken": first.data["refreshToken"]})
    assert second.status == 200, "userId is optional"


@pytest.mark.gen_test
async def test_reusing_a_rotated_refresh_token_revokes_the_session(api, user_factory):
    user = await user_factory()
    rotated = await api.post("/api/auth/refresh", json={"refreshToken": user.refresh})
    assert rotated.status == 200
    stolen = await api.post("/api/auth/refresh", json={"refreshToken": user.refresh})
    assert_error(stolen, 401, "Refresh token expired or invalid")
    # The legitimate holder's newer token died with the session.
    legit = await api.post("/api/auth/refresh", json={"refreshToken": rotated.data["refreshToken"]})
    assert_error(legit, 401, "Refresh token expired or invalid")


@pytest.mark.gen_test
async def test_refresh_refuses_access_tokens_garbage_and_a_wrong_user_id(api, user_factory):
    user = await user_factory()
    other = await user_factory()
    for body in ({"refreshToken": user.access}, {"refreshToken": "x.y.z"},
                 {"refreshToken": user.refresh, "userId": other.id}):
        assert_error(await api.post("/api/auth/refresh", json=body), 401, "Refresh token expired or invalid")
    assert_error(await api.post("/api/auth/refresh", json={}), 400, "Validation failed")


# ---- forgot / reset ----------------------------------------------------------------------
@pytest.mark.gen_test
async def test_password_reset_through_the_mailed_link(api, user_factory, mail_sink):
    user = await user_factory()
    unknown = await api.post("/api/auth/forgot-password", json={"email": "ghost@example.test"})
    known = await api.post("/api/auth/forgot-password", json={"email": user.email})
    assert unknown.status == known.status == 200
    assert unknown.message == known.message, "no account enumeration"
    mail = await mail_sink.wait_for(user.email, count=2)  # 1: verification, 2: reset
    assert mail["Subject"] == "Reset your Nexus Chat password"
    link = link_in(mail)
    assert link.startswith("http://localhost:3001/reset-password?token=")
    token = token_of(link)
    reset = await api.post("/api/auth/reset-password", json={"token": token, "newPassword": "brand-new-pass"})
    assert reset.status == 200
    assert_error(await api.post("/api/auth/refresh", json={"refreshToken": user.refresh}), 401)
    old = await api.post("/api/auth/login", json={"email": user.email, "password": user.password})
    assert_error(old, 401)
    new = await api.post("/api/auth/login", json={"email": user.email, "password": "brand-new-pass"})
    assert new.status == 200
    again = await api.post("/api/auth/reset-password", json={"token": token, "newPassword": "third-pass-1"})
    assert_error(again, 401, "Invalid or expired reset link")


@pytest.mark.gen_test
async def test_reset_refuses_bad_tokens(api, user_factory):
    user = await user_factory()
    for token in ("nope", user.access, user.refresh):
        response = await api.post("/api/auth/reset-password", json={"token": token, "newPassword": "whatever-1"})
        assert_error(response, 401, "Invalid or expired reset link")
    short = await api.post("/api/auth/reset-password", json={"token": "x", "newPassword": "123"})
    assert_error(short, 400, "Validation failed")


# ---- resend verification -------------------------------------------------------------------
@pytest.mark.gen_test
async def test_resend_verification_answers_the_same_and_mails_only_the_unverified(api, mail_sink, user_factory):
    identity, _ = await register(api)
    verified = await user_factory()
    answers = [await api.post("/api/auth/resend-verification", json={"email": e})
               for e in (identity["email"], verified.email, "ghost@example.test")]
    assert {a.status for a in answers} == {200}
    assert len({a.message for a in answers}) == 1
    second = await mail_sink.wait_for(identity["email"], count=2)
    assert token_of(link_in(second))
    assert len(mail_sink.messages_to(verified.email)) == 1, "a verified account gets no new mail"
    assert_error(await api.post("/api/auth/resend-verification", json={"email": "bad"}), 400)


# ---- change password / delete ----------------------------------------------------------------
@pytest.mark.gen_test
async def test_change_password(api, user_factory):
    user = await user_factory()
    wrong = await api.post("/api/auth/change-password", token=user.access,
                           json={"oldPassword": "not-mine", "newPassword": "another-pass"})
    assert_error(wrong, 400, "Old password does not match")
    ok = await api.post("/api/auth/change-password", token=user.access,
                        json={"oldPassword": user.password, "newPassword": "another-pass"})
    assert ok.status == 200
    assert ok.message == "Your password has been changed successfully. Please login again."
    assert_error(await api.post("/api/auth/refresh", json={"refreshToken": user.refresh}), 401)
    login = await api.post("/api/auth/login", json={"email": user.email, "password": "another-pass"})
    assert login.status == 200


@pytest.mark.gen_test
async def test_delete_account_needs_the_password(api, user_factory):
    user = await user_factory()
    wrong = await api.delete("/api/auth/delete-account", token=user.access, json={"password": "nope"})
    assert_error(wrong, 400, "Invalid password. Account deletion aborted.")
    ok = await api.delete("/api/auth/delete-account", token=user.access, json={"password": user.password})
    assert ok.status == 200
    assert_error(await api.get("/api/auth/me", token=user.access), 404, "User not found")
    assert_error(await api.post("/api/auth/login", json={"email": user.email, "password": user.password}), 401)
    assert_error(await api.post("/api/auth/refresh", json={"refreshToken": user.refresh}), 401)
