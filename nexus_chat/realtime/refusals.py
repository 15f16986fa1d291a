"""Why an Engine.IO request is refused: the protocol's error codes (the suites check them) and
the HTTP status each refusal carries (413, 429 and 503 beside the protocol's 400/403)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

TRANSPORT_UNKNOWN, UNKNOWN_SID, BAD_HANDSHAKE_METHOD, BAD_REQUEST, FORBIDDEN, UNSUPPORTED_VERSION = range(6)
ERROR_MESSAGES = {
    TRANSPORT_UNKNOWN: "Transport unknown",
    UNKNOWN_SID: "Session ID unknown",
    BAD_HANDSHAKE_METHOD: "Bad handshake method",
    BAD_REQUEST: "Bad request",
    FORBIDDEN: "Forbidden",
    UNSUPPORTED_VERSION: "Unsupported protocol version",
}


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: the HTTP status, the protocol's error ``code`` and message."""

    status: int
    code: int
    message: str
    retry_after_s: int | None = None

    @classmethod
    def protocol(cls, code: int) -> Refusal:
        return cls(403 if code == FORBIDDEN else 400, code, ERROR_MESSAGES[code])


PAYLOAD_TOO_LARGE = Refusal(413, BAD_REQUEST, "Payload too large")


def protocol_error_body(refusal: Refusal) -> bytes:
    return orjson.dumps({"code": refusal.code, "message": refusal.message})
