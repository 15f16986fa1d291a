"""The suite's tiers, one directory each, each with its own conftest.py:

unit/      pure code: codecs, settings, routing, the rate limiter, response shapes checked
           against the documented schemas. Seconds; no database, server or network.
protocol/  the Engine.IO/Socket.IO layer over real sockets, without product code or a database.
e2e/       the real server with MariaDB, SMTP, nginx, Chromium and the official clients.

Each tier's conftest.py marks its tests with the tier's name (`pytest -m unit`, or
`pytest tests/unit`); `bin/test` runs all of them. A test file outside the tier directories
fails, saying where it belongs, instead of running without its tier's fixtures.
"""
from __future__ import annotations

import functools
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "protocol", "e2e")


def mark_tier(items: list[pytest.Item], tier: str) -> None:
    """Called by each tier's pytest_collection_modifyitems (which sees every collected test)."""
    for item in items:
        parts = Path(item.path).resolve().relative_to(TESTS).parts
        if len(parts) < 2 or parts[0] not in TIERS:
            # Fails that test (before its fixtures are looked up), not the whole run.
            item.setup = functools.partial(pytest.fail, pytrace=False, reason=(
                f"{item.path}: a test file belongs in a tier directory: tests/unit/ (pure code, no "
                f"database), tests/protocol/ (the realtime layer on real sockets) or tests/e2e/"))
        elif parts[0] == tier:
            item.add_marker(getattr(pytest.mark, tier))
