"""Logging: one structured line per record, key=value or JSON (`log.format`), to stderr and
optionally to a file rotated at midnight UTC (`log.file`, `log.retention_days` kept).

The access line (``log_request``) carries request_id, method, route (the pattern, e.g.
`/api/contacts/{id}`), path, status, ms, user_id and ip. It never carries the query string,
headers or bodies: tokens travel in those (verify/reset links, Authorization, refresh bodies).
"""
from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from .routing import route_rules, route_template

access = logging.getLogger("nexus_chat.access")


class _StructuredFormatter(logging.Formatter):
    converter = time.gmtime

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc"] = record.exc_text
        return data


class KeyValueFormatter(_StructuredFormatter):
    """`ts=… level=info logger=… msg="…" key=value …`, always one line (a traceback goes into
    `exc="…\\n…"`)."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_kv(v)}" for k, v in self.fields(record).items())


class JsonFormatter(_StructuredFormatter):
    """One JSON object per line with the same keys as the key=value format."""

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(self.fields(record), default=str).decode()


_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_NEEDS_QUOTES = re.compile(r'[ ="\n\r\t]')


def _kv(value: Any) -> str:
    # Runs for every field of every access-log line: one regex scan and str.translate, both
    # in C (a per-character loop here was a visible share of a cheap request's CPU).
    text = "-" if value is None else str(value)
    if text == "" or _NEEDS_QUOTES.search(text):
        return '"' + text.translate(_ESCAPES) + '"'
    return text


def setup_logging(settings) -> None:
    """Replace the root logger's handlers by ours, at `log.level`."""
    formatter: logging.Formatter = JsonFormatter() if settings.log_format == "json" else KeyValueFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.log_file:
        path = Path(settings.log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.TimedRotatingFileHandler(
            path, when="midnight", utc=True, backupCount=settings.log_retention_days, encoding="utf-8"))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if isinstance(handler, logging.FileHandler):
            handler.close()
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
        "ip": _client_ip(handler),
    }
    # 503: the database is away or busy (logged once by its tracker), not a bug.
    level = logging.WARNING if status == 503 else logging.ERROR if status >= 500 else logging.INFO
    access.log(level, "request", extra={"fields": fields})
    metrics = getattr(handler.application, "metrics", None)
    if metrics is not None:
        metrics.observe_request(handler.request.method, route, status, seconds)


def _client_ip(handler) -> str:
    """The client behind trusted proxies (X-Forwarded-For) where the handler knows it."""
    try:
        return handler.client_ip
    except Exception:
        return handler.request.remote_ip
