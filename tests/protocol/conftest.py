"""Fixtures of the protocol tier: the Engine.IO/Socket.IO layer on real sockets, with the
conformance fixture server and no product code, database or mail."""
from __future__ import annotations

import pytest

from nexus_chat.realtime.conformance import make_app

from ..tiers import mark_tier
from .realtime_support import serve


@pytest.fixture
def fx(io_loop):
    """The conformance fixture server (pingInterval 300, pingTimeout 200, connect timeout 5000)."""
    app, engine, server = make_app()
    running = serve(app, engine, server)
    running.engine, running.server = engine, server
    yield running
    io_loop.run_sync(running.shutdown)


def pytest_collection_modifyitems(items):
    mark_tier(items, "protocol")
