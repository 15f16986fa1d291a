"""Migrations are applied in order, recorded, and safe to run twice."""
from __future__ import annotations

import asyncio
import uuid

import pymysql

from nexus_chat.migrate import apply_migrations, migration_files, split_statements

from .support import drop_database


def test_split_statements_ignores_comments_and_keeps_multiline_statements():
    text = "-- a comment; with a semicolon\nCREATE TABLE a (\n  id INT,\n  b INT\n);\n\nINSERT INTO a VALUES (1, 2);\n"
    assert split_statements(text) == ["CREATE TABLE a (\n  id INT,\n  b INT\n)", "INSERT INTO a VALUES (1, 2)"]


def test_migrate_twice_applies_once(db_server):
    host, port, user, password = db_server
    name = f"nexus_migrate_{uuid.uuid4().hex[:8]}"
    kwargs = dict(host=host, port=port, user=user, password=password, database=name)
    try:
        first = asyncio.run(apply_migrations(**kwargs))
        second = asyncio.run(apply_migrations(**kwargs))
        assert first == [p.name for p in migration_files()] and second == []
        conn = pymysql.connect(host=host, port=port, user=user, password=password, database=name)
        with conn.cursor() as cur:
            cur.execute("SELECT name FROM schema_migrations ORDER BY name")
            assert [r[0] for r in cur.fetchall()] == first
            cur.execute("SHOW TABLES")
            tables = {r[0] for r in cur.fetchall()}
            cur.execute("SELECT @@character_set_database")
            assert cur.fetchone()[0] == "utf8mb4"
        conn.close()
        assert {"users", "sessions", "contacts", "conversations", "messages", "chat_groups", "group_members",
                "stories", "story_views", "mail_outbox", "used_tokens"} <= tables
    finally:
        drop_database(db_server, name)
