"""`/api/openapi.json` and the API reference page (Swagger UI) at `/api-reference`.

The page works offline: Swagger UI's files come from the `openapi-ui-bundles` package and are
served by this server under `/api-reference/assets/`; no CDN is involved. Its CSP is the only
one relaxed (scripts and styles from this origin, inline styles, data: images).
"""
from __future__ import annotations

import mimetypes
from pathlib import Path

from openapi_ui_bundles import swagger_ui

from nexus_chat.errors import ApiError
from nexus_chat.jsonutil import dumps
from nexus_chat.openapi import build_document
from nexus_chat.web import BaseHandler, Op

TAG = "Docs"
ASSETS_DIR = Path(swagger_ui.static_path)
# What the page needs; nothing else of the package is served.
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
          "favicon-32x32.png", "favicon-16x16.png")

PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Nexus Chat API reference</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" type="image/png" href="/api-reference/assets/favicon-32x32.png">
  <link rel="stylesheet" href="/api-reference/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api-reference/assets/swagger-ui-bundle.js"></script>
  <script src="/api-reference/init.js"></script>
</body>
</html>
"""

INIT_JS = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""


class OpenApiHandler(BaseHandler):
    ops = {"GET": Op("This API's OpenAPI 3.1 document", auth=False, tag=TAG)}
    openapi_responses = {"GET": {"200": {
        "description": "The OpenAPI document (not wrapped in the envelope)",
        "content": {"application/json": {"schema": {"type": "object"}}}}}}

    def get(self) -> None:
        app = self.application
        body = getattr(app, "openapi_json", None)
        if body is None:
            body = app.openapi_json = dumps(build_document(app.api_routes))
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish(body)


class _ReferenceBase(BaseHandler):
    """Answers 404 (envelope) while `server.api_reference` is off."""

    async def admit(self) -> None:
        if not self.ctx.settings.server_api_reference:
            raise ApiError(404, f"Cannot {self.request.method} {self.request.path}")
        await super().admit()


class ApiReferenceHandler(_ReferenceBase):
    ops = {"GET": Op("API reference page", auth=False)}

    def get(self) -> None:
        self.set_header("Content-Security-Policy", PAGE_CSP)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish(PAGE)


class ApiReferenceInitHandler(_ReferenceBase):
    ops = {"GET": Op("API reference page script", auth=False)}

    def get(self) -> None:
        self.set_header("Content-Type", "text/javascript; charset=UTF-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish(INIT_JS)


class ApiReferenceAssetHandler(_ReferenceBase):
    ops = {"GET": Op("Swagger UI files", auth=False)}
    _cache: dict[str, bytes] = {}

    def get(self, name: str) -> None:
        if name not in ASSETS:
            raise ApiError(404, f"Cannot GET {self.request.path}")
        body = self._cache.get(name)
        if body is None:
            body = self._cache[name] = (ASSETS_DIR / name).read_bytes()
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=UTF-8"
        self.set_header("Content-Type", content_type)
        # The package version changes the files; revalidate with the ETag tornado sets.
        self.set_header("Cache-Control", "public, max-age=3600")
        self.finish(body)


routes = [(r"/api/openapi\.json", OpenApiHandler)]
page_routes = [
    (r"/api-reference", ApiReferenceHandler),
    (r"/api-reference/init\.js", ApiReferenceInitHandler),
    (r"/api-reference/assets/(?P<name>[^/]+)", ApiReferenceAssetHandler),
]
