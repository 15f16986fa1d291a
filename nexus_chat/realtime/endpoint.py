"""The Engine.IO endpoint: which transport's handler answers a request to the endpoint path
(split by the ``transport`` query argument). The only module that imports the engine and both
transports."""
from __future__ import annotations

import re
from typing import Any

from tornado.httputil import HTTPServerRequest
from tornado.routing import PathMatches, Rule

from .engine import EngineServer
from .polling import PollingHandler
from .websocket import EngineWebSocketHandler


class _TransportMatcher(PathMatches):
    """Matches the endpoint path, split by the ``transport`` query argument."""

    def __init__(self, path: str, websocket: bool) -> None:
        super().__init__(re.escape(path.rstrip("/")) + "/?$")
        self.websocket = websocket

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        matched = super().match(request)
        if matched is None:
            return None
        is_ws = request.query_arguments.get("transport", [b""])[0] == b"websocket"
        return matched if is_ws == self.websocket else None


def engine_routes(engine: EngineServer, path: str = "/engine.io/") -> list[Rule]:
    """The Tornado rules of ``engine``'s endpoint at ``path``."""
    kwargs = {"engine": engine}
    return [
        Rule(_TransportMatcher(path, websocket=True), EngineWebSocketHandler, kwargs),
        Rule(_TransportMatcher(path, websocket=False), PollingHandler, kwargs),
    ]
