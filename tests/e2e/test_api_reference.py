"""The API reference page (/api-reference): served offline from the packaged Swagger UI, its CSP
relaxed only there, off -> 404; and a real headless Chromium renders the routes."""
from __future__ import annotations

import asyncio
import shutil
import tempfile

import pytest

from .support import assert_error

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.gen_test
async def test_page_and_assets_are_served_by_us(api):
    page = await api.get("/api-reference")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.body.decode()
    assert "/api-reference/assets/swagger-ui-bundle.js" in html
    assert "http://" not in html and "https://" not in html   # nothing from elsewhere
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-eval" not in csp and "frame-ancestors 'none'" in csp

    for name, kind in [("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "text/css")]:
        asset = await api.get(f"/api-reference/assets/{name}")
        assert asset.status == 200, name
        assert kind in asset.headers["Content-Type"]
        assert len(asset.body) > 10_000
    script = await api.get("/api-reference/init.js")
    assert script.status == 200 and b"/api/openapi.json" in script.body
    assert_error(await api.get("/api-reference/assets/index.html"), 404)
    assert_error(await api.get("/api-reference/assets/..%2Fswagger_ui%2F__init__.py"), 404)


@pytest.mark.gen_test
async def test_csp_is_strict_everywhere_else(api):
    for path in ("/api/health", "/api/openapi.json", "/api/nope"):
        response = await api.get(path)
        assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


@pytest.mark.parametrize("setting_overrides", [{"server_api_reference": False}])
@pytest.mark.gen_test
async def test_switched_off_is_404_envelope(api):
    for path in ("/api-reference", "/api-reference/init.js", "/api-reference/assets/swagger-ui.css"):
        body = assert_error(await api.get(path), 404)
        assert body["path"] == path
    # The document itself stays available (clients and generators use it).
    assert (await api.get("/api/openapi.json")).status == 200


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
@pytest.mark.gen_test(timeout=120)
async def test_headless_chromium_renders_the_routes(runtime):
    with tempfile.TemporaryDirectory(prefix="nexus-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={profile}",
            # Any host but the test server is unresolvable: the page must work offline.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=5000", "--dump-dom", f"{runtime.base_url}/api-reference",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=100)
    dom = stdout.decode("utf-8", "replace")
    assert process.returncode == 0, stderr.decode("utf-8", "replace")[-2000:]
    assert "swagger-ui" in dom, dom[:2000]
    # Swagger UI rendered the document: operations with their paths and summaries.
    for path in ("/api/auth/login", "/api/auth/register", "/api/users/profile",
                 "/api/groups/{groupId}/members/{memberId}"):
        assert f'data-path="{path}"' in dom, f"{path} not rendered"
    assert "Nexus Chat API" in dom
    assert "Log in; returns an access and a refresh token" in dom
