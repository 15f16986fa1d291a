"""`GET /metrics`: Prometheus text format (off with `metrics.enabled = false`; guarded by
`metrics.token` when set)."""
from __future__ import annotations

import hmac

from prometheus_client.exposition import choose_encoder

from nexus_chat.errors import ApiError, unauthorized
from nexus_chat.tokens import bearer_token
from nexus_chat.web import BaseHandler, Op


class MetricsHandler(BaseHandler):
    ops = {"GET": Op("Prometheus metrics", auth=False)}

    async def admit(self) -> None:
        metrics = getattr(self.application, "metrics", None)
        if not self.ctx.settings.metrics_enabled or metrics is None:
            raise ApiError(404, f"Cannot {self.request.method} {self.request.path}")
        await super().admit()
        token = self.ctx.settings.metrics_token
        if token:
            given = bearer_token(self.request.headers.get("Authorization")) or ""
            if not hmac.compare_digest(given.encode(), token.encode()):
                error = unauthorized("Metrics token missing or invalid")
                error.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
                raise error

    def get(self) -> None:
        # Text format 0.0.4 by default; OpenMetrics when the scraper asks for it.
        encoder, content_type = choose_encoder(self.request.headers.get("Accept", ""))
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(encoder(self.application.metrics.registry))


routes = [(r"/metrics", MetricsHandler)]
