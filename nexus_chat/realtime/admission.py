"""Sessions on probation: Engine.IO sessions that have not yet connected a namespace that
admits them (the product's /chat, which checks a token). They cost memory without proving
anything, so they are counted per client address and in all, and past a cap further
handshakes are refused until some end (at the connect timeout at the latest)."""

from __future__ import annotations

import logging
import time

from .refusals import FORBIDDEN, Refusal

log = logging.getLogger("nexus_chat.realtime")

REFUSED = "Too many unauthenticated connections"
LOG_EVERY_S = 60.0  # a flood of refused handshakes is one log line a minute, not one each


class Probation:
    def __init__(self, max_total: int | None, max_per_client: int | None, retry_after_s: int) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.retry_after_s = max(1, retry_after_s)
        self._per_client: dict[str, int] = {}
        self._total = 0
        self._logged_at = -LOG_EVERY_S

    def count(self, client: str | None = None) -> int:
        return self._total if client is None else self._per_client.get(client, 0)

    def started(self, client: str) -> None:
        self._per_client[client] = self._per_client.get(client, 0) + 1
        self._total += 1

    def ended(self, client: str) -> None:
        left = self._per_client.get(client, 0) - 1
        if left > 0:
            self._per_client[client] = left
        else:
            self._per_client.pop(client, None)
        self._total -= 1

    def refusal(self, client: str) -> Refusal | None:
        """429 past the per-client cap, 503 past the total cap, else None."""
        if self.max_per_client is not None and self.count(client) >= self.max_per_client:
            self._log(f"handshakes refused: {client} has {self.count(client)} sessions without a namespace")
            return Refusal(429, FORBIDDEN, REFUSED, self.retry_after_s)
        if self.max_total is not None and self._total >= self.max_total:
            self._log(f"handshakes refused: {self._total} sessions without a namespace in all")
            return Refusal(503, FORBIDDEN, REFUSED, self.retry_after_s)
        return None

    def _log(self, message: str) -> None:
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            log.warning("socket.io: %s (logged once a minute while it lasts)", message)
