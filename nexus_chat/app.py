"""The application factory: routes, settings, and the context every handler sees."""
from __future__ import annotations

import tornado.web

from .context import AppContext
from .handlers import (attachments, auth, chat, contacts, docs, groups, health, messages, metrics, public,
                       story, users)
from .logs import log_request
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


def api_routes() -> list:
    """Every REST route, in one list (also read by the OpenAPI generator)."""
    return [*health.routes, *auth.routes, *users.routes, *contacts.routes, *groups.routes,
            *chat.routes, *messages.routes, *attachments.routes, *story.routes, *public.routes,
            *docs.routes]


def make_app(ctx: AppContext, extra_routes: list | None = None) -> Application:
    return Application(ctx, [*(extra_routes or []), *api_routes(), *docs.page_routes, *metrics.routes])
