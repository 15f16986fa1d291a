"""The application factory: routes, settings, and the context every handler sees."""
from __future__ import annotations

import tornado.web

from .context import AppContext
from .logs import log_request
from .routes import api_routes, app_routes
from .web import NotFoundHandler, OversizedRequestHandler, oversized


class Application(tornado.web.Application):
    def __init__(self, ctx: AppContext, routes: list) -> None:
        self.ctx = ctx
        super().__init__(
            routes,
            default_handler_class=NotFoundHandler,
            log_function=log_request,
            compress_response=False,   # nginx compresses; keeps CPU for the event loop
            xheaders=False,            # client IPs come from BaseHandler.client_ip (trusted_proxies)
        )

    def find_handler(self, request, **kwargs):  # type: ignore[override]
        error = oversized(request)
        if error is not None:
            return self.get_handler_delegate(request, OversizedRequestHandler, {"error": error})
        return super().find_handler(request, **kwargs)


def make_app(ctx: AppContext, extra_routes: list | None = None) -> Application:
    app = Application(ctx, app_routes(extra_routes))
    app.api_routes = api_routes()   # what /api/openapi.json describes
    return app
