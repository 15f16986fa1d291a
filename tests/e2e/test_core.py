"""The HTTP core: envelopes, unknown routes, 405, headers, CORS, health."""
from __future__ import annotations

import pytest

from .support import assert_error


@pytest.mark.gen_test
async def test_health_reports_database_up(api):
    response = await api.get("/api/health")
    assert response.status == 200
    body = response.json
    assert body["success"] is True and body["statusCode"] == 200
    assert body["data"] == {"status": "ok", "database": "up"}
    assert body["timestamp"].endswith("Z") and len(body["timestamp"]) == 24


@pytest.mark.gen_test
async def test_unknown_route_is_404_envelope(api):
    response = await api.get("/api/does-not-exist")
    body = assert_error(response, 404)
    assert body["error"] == "Not Found"
    assert body["path"] == "/api/does-not-exist"
    assert "errors" not in body


@pytest.mark.gen_test
async def test_wrong_method_is_405_envelope(api):
    response = await api.put("/api/auth/login", json={})
    body = assert_error(response, 405)
    assert body["error"] == "Method Not Allowed"


@pytest.mark.gen_test
async def test_every_response_has_request_id_and_security_headers(api):
    for response in (await api.get("/api/health"), await api.get("/api/nope"),
                     await api.post("/api/auth/login", body=b"{", headers={"Content-Type": "application/json"})):
        assert len(response.headers["X-Request-Id"]) >= 16
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.gen_test
async def test_a_given_request_id_is_echoed(api):
    response = await api.get("/api/health", headers={"X-Request-Id": "trace-123"})
    assert response.headers["X-Request-Id"] == "trace-123"


@pytest.mark.gen_test
async def test_malformed_json_and_wrong_content_type_are_400(api):
    response = await api.post("/api/auth/login", body=b'{"email": ', headers={"Content-Type": "application/json"})
    assert_error(response, 400, "Malformed JSON body")
    response = await api.post("/api/auth/login", body=b"email=a", headers={"Content-Type": "text/plain"})
    assert_error(response, 400)


@pytest.mark.gen_test
async def test_non_object_body_is_a_validation_error(api):
    response = await api.post("/api/auth/login", json=[1, 2])
    body = assert_error(response, 400, "Validation failed")
    assert body["errors"] == ["body: Invalid input type."]


@pytest.mark.gen_test
async def test_cors_allows_only_configured_origins(api):
    allowed = await api.request("OPTIONS", "/api/auth/login", headers={
        "Origin": "http://localhost:3001", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,authorization"})
    assert allowed.status == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://localhost:3001"
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    denied = await api.request("OPTIONS", "/api/auth/login", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in denied.headers
    simple = await api.get("/api/health", headers={"Origin": "http://localhost:3001"})
    assert simple.headers["Access-Control-Allow-Origin"] == "http://localhost:3001"


@pytest.mark.gen_test
async def test_oversized_bodies_get_a_413_envelope_declared_or_chunked(api):
    from tornado.httpclient import HTTPRequest

    declared = await api.post("/api/auth/login", body=b"x" * (2 << 20),
                              headers={"Content-Type": "application/json"})
    assert_error(declared, 413)

    async def produce(write):
        for _ in range(40):  # 40 × 64 KiB = 2.5 MiB, no Content-Length
            await write(b" " * 65536)

    request = HTTPRequest(api.base_url + "/api/auth/login", method="POST", body_producer=produce,
                          headers={"Content-Type": "application/json"})
    chunked = await api.client.fetch(request, raise_error=False)
    assert chunked.code == 413
    assert chunked.headers["Content-Type"].startswith("application/json")
