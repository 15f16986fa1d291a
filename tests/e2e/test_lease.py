"""The background-jobs lease (nexus_chat/lease.py) on a real Redis: one holder at a time, handed
over on release, taken over when the holder stops renewing, never released on another's behalf,
and not believed in while Redis is unreachable. And the outbox's row claim on the real database:
two senders that overlap still send each mail once."""
from __future__ import annotations

import asyncio
import os
import uuid

import pytest
import redis.asyncio as aioredis

from nexus_chat.lease import AlwaysHeld, RedisLease, lease_key
from nexus_chat.mail import OutboxSender
from nexus_chat.queries import outbox
from nexus_chat.jsonutil import utcnow

from .redis_support import private_redis_fixture

redis_server = pytest.fixture(scope="session")(private_redis_fixture)


@pytest.fixture
def redis_url(redis_server):
    return os.environ.get("NEXUS_TEST_REDIS_URL") or redis_server.url


@pytest.fixture
def key():
    return lease_key(f"nexus-test-{uuid.uuid4().hex[:10]}")


async def _until(check, what: str, timeout: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.05)


async def _value(url: str, key: str) -> str | None:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        return await client.get(key)
    finally:
        await client.aclose()


@pytest.mark.gen_test(timeout=60)
async def test_one_holder_at_a_time_and_the_release_hands_it_over(redis_url, key):
    a, b = RedisLease(redis_url, key, 2), RedisLease(redis_url, key, 2)
    try:
        await a.start()
        await b.start()
        assert a.held and not b.held
        assert await _value(redis_url, key) == a.token
        await asyncio.sleep(3)                # past the ttl: only a's renewals (every ttl/3) keep it
        assert await b.try_once() is False and a.held and not b.held
        await a.stop()                        # released: the key is gone
        assert not a.held and await _value(redis_url, key) is None
        assert await b.try_once() is True and b.held
        assert await _value(redis_url, key) == b.token
    finally:
        await a.stop()
        await b.stop()


@pytest.mark.gen_test(timeout=60)
async def test_a_holder_that_dies_loses_the_lease_to_another(redis_url, key):
    dead, survivor = RedisLease(redis_url, key, 2), RedisLease(redis_url, key, 2)
    try:
        await dead.start()
        await survivor.start()
        assert dead.held and not survivor.held
        # Dies: no more renewals, nothing released (as after SIGKILL).
        dead._task.cancel()
        client = aioredis.Redis.from_url(redis_url)
        ttl_ms = await client.pttl(key)
        await client.aclose()
        assert 0 < ttl_ms <= 2000             # the key goes by itself within one ttl
        await _until(lambda: survivor.held, "the survivor takes the lease over")
        assert await _value(redis_url, key) == survivor.token
        await _until(lambda: not dead.held, "the dead one's own belief runs out")
    finally:
        await survivor.stop()
        dead._task = None
        await dead.stop()


@pytest.mark.gen_test(timeout=60)
async def test_release_and_renewal_never_touch_another_holders_key(redis_url, key):
    mine = RedisLease(redis_url, key, 5)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        await mine.start()
        assert mine.held
        # Our key lapsed and another process took it (as after a long pause of ours).
        await client.set(key, "other-holder", px=5000)
        assert await mine.try_once() is False and not mine.held
        await mine.stop()
        assert await client.get(key) == "other-holder"
    finally:
        await mine.stop()
        await client.delete(key)
        await client.aclose()


@pytest.mark.gen_test(timeout=90)
async def test_no_holder_believes_in_a_lease_while_redis_is_down(redis_server, key):
    if redis_server is None:
        pytest.skip("NEXUS_TEST_REDIS_URL: not our server to restart")
    lease = RedisLease(redis_server.url, key, 2)
    try:
        await lease.start()
        assert lease.held
        redis_server.stop()
        await _until(lambda: not lease.held, "the holder stops believing it holds the lease")
        redis_server.start()                   # empty: nothing was saved
        await _until(lambda: lease.held, "taken again once Redis answers")
        assert await _value(redis_server.url, key) == lease.token
    finally:
        if redis_server.proc is None:
            redis_server.start()
        await lease.stop()


def test_one_process_always_runs_the_jobs():
    assert AlwaysHeld().held


class _Collecting:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def deliver(self, message) -> None:
        await asyncio.sleep(0.01)
        self.sent.append(str(message["To"]))


@pytest.mark.gen_test(timeout=60)
async def test_two_overlapping_senders_send_each_mail_once(runtime, settings):
    await runtime.outbox.stop()              # only the two senders below
    tag = uuid.uuid4().hex[:8]
    recipients = [f"claim-{tag}-{i}@example.test" for i in range(6)]
    for address in recipients:
        await outbox.enqueue_mail(runtime.db, recipient=address, subject="s", text_body="t",
                                  html_body="h", now=utcnow())
    one, two = _Collecting(), _Collecting()
    # Both believe they run the outbox (a lease lost during a pause, say): the claim decides.
    senders = [OutboxSender(runtime.db, settings, backend=backend, lease=AlwaysHeld())
               for backend in (one, two)]
    await asyncio.gather(*(sender.send_due() for sender in senders))
    sent = [to for to in one.sent + two.sent if to.startswith(f"claim-{tag}-")]
    assert sorted(sent) == sorted(recipients)
    rows = await runtime.db.fetch_all(
        "SELECT sent_at FROM mail_outbox WHERE recipient LIKE %s", (f"claim-{tag}-%",))
    assert len(rows) == 6 and all(row["sent_at"] is not None for row in rows)
