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
def setting_overrides(late_sink):
    return {"mail_port": late_sink.port, "mail_poll_s": 1}


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
