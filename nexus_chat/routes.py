"""The route table: every route the application serves, in one place. The application
(app.py) serves it, the OpenAPI document describes ``api_routes()`` (the docs handler reads
them from the application), and the access log names routes from the same rules."""
from __future__ import annotations

from .handlers import (attachments, auth, chat, contacts, docs, groups, health, messages, metrics, public,
                       story, users)


def api_routes() -> list:
    """Every REST route (what the OpenAPI document covers)."""
    return [*health.routes, *auth.routes, *users.routes, *contacts.routes, *groups.routes,
            *chat.routes, *messages.routes, *attachments.routes, *story.routes, *public.routes,
            *docs.routes]


def app_routes(extra_routes: list | None = None) -> list:
    """What the application serves: ``extra_routes`` first (the Socket.IO endpoint), the REST
    routes, the API reference page and /metrics."""
    return [*(extra_routes or []), *api_routes(), *docs.page_routes, *metrics.routes]
