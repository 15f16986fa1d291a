"""The outbox: a mail queued while the SMTP server is down is delivered once it is up."""
from __future__ import annotations

import asyncio
import time

import pytest

from nexus_chat.embedded_db import free_port

from .support import MailSink, link_in, register


@pytest.fixture
def late_sink():
    sink = MailSink(free_port())   # not started: the "mail server" is down
    yield sink
    sink.stop()


@pytest.fixture
def setting_overrides(late_sink, request):
    """The late sink's port, plus what a test passes with indirect parametrization."""
    return {"mail_port": late_sink.port, "mail_poll_s": 1, **getattr(request, "param", {})}


async def outbox_row(runtime, address):
    return await runtime.db.fetch_one(
        "SELECT attempts, sent_at, last_error FROM mail_outbox WHERE recipient = %s", (address,))


@pytest.mark.gen_test(timeout=30)
async def test_mail_queued_while_smtp_is_down_is_delivered_once_it_comes_up(api, late_sink, runtime):
    identity, response = await register(api)
    assert response.status == 201, "registering never fails because the mail server is down"
    deadline = time.monotonic() + 10
    row = await outbox_row(runtime, identity["email"])
    while row["attempts"] == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        row = await outbox_row(runtime, identity["email"])
    assert row["sent_at"] is None and row["attempts"] >= 1 and row["last_error"]
    late_sink.start()
    message = await late_sink.wait_for(identity["email"], timeout=15)
    assert "verify-email?token=" in link_in(message)
    # The sink holds the mail a moment before the sender hears "250" and records it as sent.
    deadline = time.monotonic() + 10
    while (await outbox_row(runtime, identity["email"]))["sent_at"] is None:
        assert time.monotonic() < deadline, "delivered but never marked as sent"
        await asyncio.sleep(0.02)


@pytest.mark.gen_test
async def test_the_sweep_forgets_sent_mail_after_a_week_but_never_unsent_mail(runtime):
    from datetime import timedelta

    from nexus_chat.jsonutil import utcnow
    from nexus_chat.queries import outbox
    from nexus_chat.sweeper import sweep_once

    now = utcnow()
    tag = f"sweep-{time.monotonic_ns()}@example.test"
    for age_days, sent in ((8, True), (1, True), (30, False)):
        await outbox.enqueue_mail(runtime.db, recipient=tag, subject=f"{age_days}", text_body="t",
                                  html_body="h", now=now - timedelta(days=age_days))
        if sent:
            await runtime.db.execute("UPDATE mail_outbox SET sent_at = %s WHERE recipient = %s AND subject = %s",
                                     (now - timedelta(days=age_days), tag, f"{age_days}"))
    # Keep the sender off the unsent row so the test reads it as the sweep left it.
    await runtime.outbox.stop()
    removed = await sweep_once(runtime.ctx)
    assert removed["sentMail"] >= 1
    rows = await runtime.db.fetch_all("SELECT subject FROM mail_outbox WHERE recipient = %s ORDER BY subject", (tag,))
    assert [r["subject"] for r in rows] == ["1", "30"]


async def wait_for_first_failure(runtime, address):
    deadline = time.monotonic() + 10
    row = await outbox_row(runtime, address)
    while row["attempts"] == 0:
        assert time.monotonic() < deadline, "the sender never tried"
        await asyncio.sleep(0.05)
        row = await outbox_row(runtime, address)
    assert row["sent_at"] is None and row["last_error"]


async def as_after_a_long_outage(runtime, address):
    """The mail has failed nine times: its next try is the maximum delay away."""
    await runtime.db.execute(
        "UPDATE mail_outbox SET attempts = 9, next_attempt_at = UTC_TIMESTAMP(3) + INTERVAL 600 SECOND"
        " WHERE recipient = %s", (address,))


@pytest.mark.gen_test(timeout=40)
@pytest.mark.parametrize("setting_overrides", [{"mail_probe_s": 1}], indirect=True)
async def test_a_probe_ends_the_backoff_when_smtp_comes_back(api, late_sink, runtime):
    identity, response = await register(api)
    assert response.status == 201
    await wait_for_first_failure(runtime, identity["email"])
    await as_after_a_long_outage(runtime, identity["email"])
    late_sink.start()
    # within seconds (probe every second), not when its 600 s delay runs out
    message = await late_sink.wait_for(identity["email"], timeout=15)
    assert "verify-email?token=" in link_in(message)


@pytest.mark.gen_test(timeout=40)
@pytest.mark.parametrize("setting_overrides", [{"mail_probe_s": 3600}], indirect=True)
async def test_a_successful_delivery_ends_the_backoff_of_the_rest_of_the_queue(api, late_sink, runtime):
    first, response = await register(api)
    assert response.status == 201
    await wait_for_first_failure(runtime, first["email"])
    await as_after_a_long_outage(runtime, first["email"])
    late_sink.start()   # no probe in this test: the next mail's delivery has to tell
    second, response = await register(api)
    assert response.status == 201
    await late_sink.wait_for(second["email"], timeout=15)
    message = await late_sink.wait_for(first["email"], timeout=10)
    assert "verify-email?token=" in link_in(message)
