"""One error family. Anything raised as ApiError becomes the error envelope (see web.py)."""
from __future__ import annotations

from http import HTTPStatus
from typing import Any

from .db import db_unreachable, is_contention


class ApiError(Exception):
    """An error a client may see: HTTP status, a message, and optional validation errors."""

    def __init__(self, status: int, message: str, errors: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def __reduce__(self) -> tuple:
        # Raised in a media worker process and re-raised here: pickled with all its fields
        # (Exception's default keeps only the message).
        return (type(self), (self.status, self.message, self.errors, self.headers))

    @property
    def reason(self) -> str:
        return reason_phrase(self.status)


# Where Python's HTTPStatus keeps an older name: 413 as the old backend (and RFC 7231) calls
# it, on every surface (REST, uploads, Engine.IO); 414 as RFC 9110 does.
_PHRASES = {413: "Payload Too Large", 414: "URI Too Long"}


def reason_phrase(status: int) -> str:
    if status in _PHRASES:
        return _PHRASES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def error_body(status: int, message: str, errors: list[str] | None = None,
               **extra: Any) -> dict[str, Any]:
    """The one error envelope (docs/api.md#envelope), answered by REST routes (web.py adds
    ``path`` and ``timestamp``) and as Socket.IO acks (with ``retryAfter`` on a 503)."""
    body: dict[str, Any] = {"success": False, "statusCode": status, "error": reason_phrase(status),
                            "message": message, **extra}
    if errors:
        body["errors"] = errors
    return body


def bad_request(message: str, errors: list[str] | None = None) -> ApiError:
    return ApiError(400, message, errors)


def unauthorized(message: str = "Invalid or expired token") -> ApiError:
    return ApiError(401, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def method_not_allowed(allowed: list[str]) -> ApiError:
    return ApiError(405, "Method Not Allowed", headers={"Allow": ", ".join(allowed)})


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


def too_large(message: str = "Payload too large") -> ApiError:
    return ApiError(413, message)


def too_many_requests(retry_after_s: int) -> ApiError:
    return ApiError(429, "Too many requests, please try again later",
                    headers={"Retry-After": str(max(1, retry_after_s))})


def validation_failed(errors: list[str]) -> ApiError:
    return ApiError(400, "Validation failed", errors)


# ---- the database: which failures a retry may fix -------------------------------------------
RETRY_AFTER_S = 1


def db_transient_error(exc: BaseException | None) -> ApiError | None:
    """The 503 a client gets (REST and Socket.IO alike) for a database failure that a retry
    may fix: contention (deadlock, lock wait timeout) or an outage. None for anything else."""
    if is_contention(exc):
        return service_unavailable("The server is busy, please retry")
    if db_unreachable(exc):
        return service_unavailable("The database is unavailable, please retry")
    return None


def service_unavailable(message: str, retry_after_s: int = RETRY_AFTER_S) -> ApiError:
    return ApiError(503, message, headers={"Retry-After": str(max(1, retry_after_s))})
