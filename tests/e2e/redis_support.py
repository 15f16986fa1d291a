"""A private Redis server for the scale-out tests (like the private MariaDB of
nexus_chat/embedded_db.py): redis-server on a free port, nothing saved to disk, stopped at the
end. It can be stopped and started again on the same port (the restart tests).
$NEXUS_TEST_REDIS_URL points the tests at another server instead (no restart tests then)."""
from __future__ import annotations

from pathlib import Path

from nexus_chat.embedded_db import PrivateRedis

__all__ = ["PrivateRedis", "private_redis_fixture"]


def private_redis_fixture():
    """A session fixture body: a PrivateRedis of the test module's own (None when
    $NEXUS_TEST_REDIS_URL names another server). Use: ``redis_server = pytest.fixture(
    scope="session")(private_redis_fixture)``."""
    import os
    import tempfile

    if os.environ.get("NEXUS_TEST_REDIS_URL"):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="nexus-test-redis-") as tmp:
        server = PrivateRedis(Path(tmp)).start()
        try:
            yield server
        finally:
            server.stop()
