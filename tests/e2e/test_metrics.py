"""GET /metrics: Prometheus text format, per-app registry, switch and token."""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nexus_chat.metrics import MESSAGES_SENT
from nexus_chat.queries.outbox import pending_mail_count

from .support import assert_error


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(metrics: dict, name: str, **labels: str) -> float | None:
    return metrics.get((name, frozenset(labels.items())))


async def scrape(api, **kw) -> dict:
    response = await api.get("/metrics", **kw)
    assert response.status == 200, response.body
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(response.body.decode())


@pytest.mark.gen_test
async def test_requests_are_counted_by_route_pattern_and_status(api, user_factory):
    user = await user_factory("m")
    await api.get("/api/health")
    await api.get("/api/health")
    await api.get(f"/api/contacts/{uuid.uuid4()}", token=user.access)     # 404, a path parameter
    await api.get("/api/no/such/route/" + uuid.uuid4().hex)                # unmatched
    metrics = await scrape(api)
    assert value(metrics, "nexus_http_requests_total", method="GET", route="/api/health", status="200") == 2
    assert value(metrics, "nexus_http_requests_total", method="GET", route="/api/contacts/{id}",
                 status="404") == 1
    assert value(metrics, "nexus_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(metrics, "nexus_http_requests_total", method="POST", route="/api/auth/login",
                 status="200") == 1
    # No raw path (with its ids) ever becomes a label.
    assert not any("route" in dict(labels) and dict(labels)["route"].count("-") >= 4
                   for _, labels in metrics)
    assert value(metrics, "nexus_http_request_duration_seconds_count", method="GET", route="/api/health") == 2
    assert value(metrics, "nexus_http_request_duration_seconds_bucket", method="GET",
                 route="/api/health", le="+Inf") == 2


@pytest.mark.gen_test
async def test_pool_socket_outbox_and_messages_gauges(api, runtime, settings):
    metrics = await scrape(api)
    assert value(metrics, "nexus_db_pool_connections", state="max") == settings.database_pool_size
    assert value(metrics, "nexus_db_pool_connections", state="open") >= 1
    assert value(metrics, "nexus_db_pool_connections", state="in_use") >= 0
    assert value(metrics, "nexus_socketio_connections") == 0
    assert value(metrics, "nexus_background_leader") == 1     # one process runs the jobs itself
    assert value(metrics, "nexus_message_insert_batches") == runtime.ctx.messages.batches

    await runtime.app.metrics._refresh_outbox()
    metrics = await scrape(api)
    assert value(metrics, "nexus_mail_outbox_pending") == await pending_mail_count(runtime.db)

    before = value(metrics, "nexus_messages_sent_total", kind="direct") or 0
    MESSAGES_SENT.labels(kind="direct").inc()
    metrics = await scrape(api)
    assert value(metrics, "nexus_messages_sent_total", kind="direct") == before + 1


@pytest.mark.gen_test(timeout=30)
async def test_socket_connections_are_counted(api, runtime):
    socketio = pytest.importorskip("socketio")
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(runtime.base_url, transports=["polling"], wait_timeout=10)
    try:
        metrics = await scrape(api)
        assert value(metrics, "nexus_socketio_connections") == 1
    finally:
        await client.disconnect()
    for _ in range(50):
        if value(await scrape(api), "nexus_socketio_connections") == 0:
            break
        await asyncio.sleep(0.05)
    assert value(await scrape(api), "nexus_socketio_connections") == 0


@pytest.mark.gen_test(timeout=20)
async def test_event_loop_lag_is_measured(api):
    await asyncio.sleep(0.6)            # at least one tick of the lag timer
    time.sleep(0.8)                     # block the loop past the next tick (0.5 s apart)
    await asyncio.sleep(0.6)
    metrics = await scrape(api)
    assert value(metrics, "nexus_event_loop_lag_seconds_count") >= 2
    assert value(metrics, "nexus_event_loop_lag_seconds_sum") >= 0.25   # fired >= 0.3 s late


@pytest.mark.parametrize("setting_overrides", [{"metrics_enabled": False}])
@pytest.mark.gen_test
async def test_disabled_is_404(api):
    assert_error(await api.get("/metrics"), 404)


@pytest.mark.parametrize("setting_overrides", [{"metrics_token": "scrape-token-123"}])
@pytest.mark.gen_test
async def test_token_is_required_when_set(api):
    body = assert_error(await api.get("/metrics"), 401)
    assert "metrics" in body["message"].lower()
    assert_error(await api.get("/metrics", token="wrong"), 401)
    assert_error(await api.get("/metrics", headers={"Authorization": "scrape-token-123"}), 401)
    metrics = await scrape(api, token="scrape-token-123")
    assert value(metrics, "nexus_db_pool_connections", state="max") is not None


@pytest.mark.gen_test
async def test_each_app_has_its_own_registry(runtime):
    # A second runtime's counts would leak into this one with a shared registry.
    registry = runtime.app.metrics.registry
    assert registry.get_sample_value("nexus_http_requests_total",
                                     {"method": "GET", "route": "/api/health", "status": "200"}) is None
