"""The private MariaDB that `serve` starts when no database is configured or answering."""
from __future__ import annotations

import asyncio
import os
import shutil

import pymysql
import pytest

from nexus_chat.embedded_db import PrivateMariaDB, port_answers
from nexus_chat.migrate import apply_migrations

pytestmark = pytest.mark.skipif(not (shutil.which("mariadbd") or os.path.exists("/usr/sbin/mariadbd")),
                                reason="mariadbd is not installed (bin/test installs mariadb-server)")


def test_private_mariadb_starts_migrates_keeps_data_and_stops(tmp_path):
    server = PrivateMariaDB(tmp_path / "mariadb")
    server.start()
    try:
        applied = asyncio.run(apply_migrations(host=server.host, port=server.port, user="root", password="",
                                               database="nexus_chat"))
        assert "001_init.sql" in applied
        conn = pymysql.connect(host=server.host, port=server.port, user="root", password="", database="nexus_chat")
        with conn.cursor() as cur:
            cur.execute("SELECT @@character_set_server, @@bind_address")
            charset, bind = cur.fetchone()
        conn.close()
        assert charset == "utf8mb4" and bind == "127.0.0.1"
    finally:
        server.stop()
    assert not port_answers(server.host, server.port)
    again = PrivateMariaDB(tmp_path / "mariadb")  # same datadir, new port: the data is kept
    again.start()
    try:
        assert asyncio.run(apply_migrations(host=again.host, port=again.port, user="root", password="",
                                            database="nexus_chat")) == []
    finally:
        again.stop()
