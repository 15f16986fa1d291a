"""Auth under real conditions: bcrypt load, rate limits, expiry."""
from __future__ import annotations

import asyncio
import time

import pytest

from .support import assert_error, new_identity

@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("setting_overrides", [{"auth_bcrypt_rounds": 12}])
async def test_concurrent_logins_do_not_stall_other_requests(api, user_factory):
    user = await user_factory()  # hashed at cost 12 (~0.3 s a hash on one core)
    credentials = {"email": user.email, "password": user.password}
    started = time.monotonic()
    logins = [asyncio.ensure_future(api.post("/api/auth/login", json=credentials)) for _ in range(4)]
    gaps = []
    while not all(f.done() for f in logins):
        t0 = time.monotonic()
        assert (await api.get("/api/health")).status == 200
        gaps.append(time.monotonic() - t0)
    login_time = time.monotonic() - started
    assert [f.result().status for f in logins] == [200] * 4
    assert login_time > 0.4, "four cost-12 hashes take a while"
    assert len(gaps) >= 5, "other requests were served while bcrypt ran"
    assert max(gaps) < 0.15, f"a health check waited {max(gaps):.3f} s behind bcrypt"


@pytest.mark.gen_test
@pytest.mark.parametrize("setting_overrides", [{"server_rate_limits": True}])
async def test_login_is_limited_to_five_a_minute_per_ip_and_email(api, user_factory):
    user = await user_factory()
    for _ in range(4):  # user_factory already logged in once
        assert (await api.post("/api/auth/login", json={"email": user.email, "password": "wrong-1"})).status == 401
    limited = await api.post("/api/auth/login", json={"email": user.email, "password": user.password})
    body = assert_error(limited, 429)
    assert body["error"] == "Too Many Requests"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    other = await user_factory()
    assert (await api.post("/api/auth/login", json={"email": other.email, "password": other.password})).status == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("setting_overrides", [{"server_rate_limits": True}])
async def test_register_is_limited_to_three_a_minute_per_ip(api):
    statuses = [(await api.post("/api/auth/register", json=new_identity())).status for _ in range(4)]
    assert statuses == [201, 201, 201, 429]


@pytest.mark.gen_test
@pytest.mark.parametrize("setting_overrides", [{"server_rate_limits": True}])
async def test_forgot_password_is_limited_to_two_a_minute(api):
    body = {"email": "someone@example.test"}
    statuses = [(await api.post("/api/auth/forgot-password", json=body)).status for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("setting_overrides", [{"jwt_access_ttl_s": 1}])
async def test_an_expired_access_token_is_refused(api, user_factory):
    user = await user_factory()
    assert (await api.get("/api/auth/me", token=user.access)).status == 200
    await asyncio.sleep(2.1)
    assert_error(await api.get("/api/auth/me", token=user.access), 401, "Invalid or expired token")
    fresh = await api.post("/api/auth/refresh", json={"refreshToken": user.refresh})
    assert fresh.status == 200


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("setting_overrides", [{"server_rate_limits": True}])
async def test_password_spraying_from_one_ip_is_stopped(api, user_factory):
    """20 wrong passwords against 20 accounts from one IP: the per-(IP, e-mail) limit never
    triggers, the per-IP cap on failed logins does (default 10 per 5 minutes)."""
    victim = await user_factory()
    sprayer = {"X-Forwarded-For": "203.0.113.7"}   # the test talks through a trusted proxy (127.0.0.1)
    statuses = []
    for i in range(20):
        response = await api.post("/api/auth/login", headers=sprayer,
                                  json={"email": f"target{i}.{victim.id[:8]}@example.test", "password": "Summer2026!"})
        statuses.append(response.status)
    assert statuses == [401] * 10 + [429] * 10
    limited = await api.post("/api/auth/login", headers=sprayer,
                             json={"email": victim.email, "password": victim.password})
    body = assert_error(limited, 429)
    assert body["error"] == "Too Many Requests"
    assert 1 <= int(limited.headers["Retry-After"]) <= 300
    # another client is not punished for it
    other = await api.post("/api/auth/login", headers={"X-Forwarded-For": "198.51.100.9"},
                           json={"email": victim.email, "password": victim.password})
    assert other.status == 200


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("setting_overrides", [{"server_rate_limits": True, "auth_login_failures_per_ip": 3,
                                                "auth_login_failures_window_s": 2}])
async def test_the_failed_login_cap_is_configurable_and_successes_do_not_count(api, user_factory):
    user = await user_factory()
    ip = {"X-Forwarded-For": "203.0.113.8"}
    good = {"email": user.email, "password": user.password}
    for _ in range(3):   # (the per-(IP, e-mail) limit allows 5 a minute)
        assert (await api.post("/api/auth/login", headers=ip, json=good)).status == 200
    for i in range(3):
        bad = {"email": f"nobody{i}@example.test", "password": "guess-123"}
        assert (await api.post("/api/auth/login", headers=ip, json=bad)).status == 401
    assert (await api.post("/api/auth/login", headers=ip, json={"email": "x@example.test", "password": "y-123456"})).status == 429
    await asyncio.sleep(2.1)   # the window ends
    assert (await api.post("/api/auth/login", headers=ip, json=good)).status == 200
