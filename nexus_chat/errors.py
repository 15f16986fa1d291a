"""One error family. Anything raised as ApiError becomes the error envelope (see web.py)."""
from __future__ import annotations

from http import HTTPStatus


class ApiError(Exception):
    """An error a client may see: HTTP status, a message, and optional validation errors."""

    def __init__(self, status: int, message: str, errors: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    @property
    def reason(self) -> str:
        return reason_phrase(self.status)


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def bad_request(message: str, errors: list[str] | None = None) -> ApiError:
    return ApiError(400, message, errors)


def unauthorized(message: str = "Invalid or expired token") -> ApiError:
    return ApiError(401, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


def too_large(message: str = "Payload too large") -> ApiError:
    return ApiError(413, message)


def too_many_requests(retry_after_s: int) -> ApiError:
    return ApiError(429, "Too many requests, please try again later",
                    headers={"Retry-After": str(max(1, retry_after_s))})


def validation_failed(errors: list[str]) -> ApiError:
    return ApiError(400, "Validation failed", errors)
