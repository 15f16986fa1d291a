"""Fixtures of the unit tier: pure code only. Nothing here opens a socket, a database or a
server, so `pytest tests/unit` runs in seconds on a machine with none of them."""
from __future__ import annotations

import pytest

from nexus_chat.openapi import build_document
from nexus_chat.routes import api_routes

from ..tiers import mark_tier


@pytest.fixture(scope="session")
def document() -> dict:
    """The OpenAPI document, as GET /api/openapi.json serves it (built without a server)."""
    return build_document(api_routes())


def pytest_collection_modifyitems(items):
    mark_tier(items, "unit")
