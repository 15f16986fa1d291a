"""Logging setup and the access log line (one structured line per request)."""
from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from .openapi import route_rules, route_template

access = logging.getLogger("nexus_chat.access")


class KeyValueFormatter(logging.Formatter):
    """`ts=… level=info logger=… msg="…" key=value …` (extra fields from record.fields)."""

    def format(self, record: logging.LogRecord) -> str:
        parts = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                 "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        parts.update(getattr(record, "fields", {}))
        line = " ".join(f"{k}={_kv(v)}" for k, v in parts.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def _kv(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def setup_logging(settings) -> None:
    formatter: logging.Formatter = JsonFormatter() if settings.log_format == "json" else KeyValueFormatter()
    formatter.converter = time.gmtime
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.log_file:
        path = Path(settings.log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.TimedRotatingFileHandler(
            path, when="midnight", utc=True, backupCount=settings.log_retention_days, encoding="utf-8"))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # Tornado's own access log is replaced by ours (log_request below).
    logging.getLogger("tornado.access").setLevel(logging.WARNING)


def route_of(handler) -> str:
    """The route pattern that matched (`/api/contacts/{id}`), not the path: a bounded set,
    usable as a metrics label. Unknown paths are all `unmatched`."""
    app = handler.application
    routes = getattr(app, "_route_templates", None)
    if routes is None:
        routes = {}
        for pattern, cls in route_rules(app):
            try:
                template = route_template(pattern)
            except ValueError:
                template = pattern
            routes.setdefault(cls, []).append((re.compile(pattern), template))
        app._route_templates = routes
    candidates = routes.get(type(handler))
    if not candidates:
        return "unmatched"
    if len(candidates) == 1:
        return candidates[0][1]
    path = handler.request.path
    return next((template for regex, template in candidates if regex.match(path)), candidates[0][1])


def log_request(handler) -> None:
    """Tornado's `log_function`: one line per finished request, and its metrics. The query
    string is never logged (it may carry tokens), nor are bodies or headers."""
    status = handler.get_status()
    seconds = handler.request.request_time()
    route = route_of(handler)
    fields = {
        "request_id": getattr(handler, "request_id", None) or "-",
        "method": handler.request.method,
        "route": route,
        "path": handler.request.path,
        "status": status,
        "ms": round(1000.0 * seconds, 2),
        "user_id": getattr(handler, "user_id", None) or "-",
        "ip": handler.request.remote_ip,
    }
    level = logging.ERROR if status >= 500 else logging.INFO
    access.log(level, "request", extra={"fields": fields})
    metrics = getattr(handler.application, "metrics", None)
    if metrics is not None:
        metrics.observe_request(handler.request.method, route, status, seconds)
