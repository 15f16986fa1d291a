"""Schema migrations: numbered files in sql/, applied in order, recorded in schema_migrations.

sql/ ships as the package data of ``nexus_chat.sql``, so an installed wheel finds its
migrations without a checkout.
"""
from __future__ import annotations

import logging
import re
from importlib.resources import files
from importlib.resources.abc import Traversable

import aiomysql

from .db import QuietCursor

log = logging.getLogger("nexus_chat.migrate")

MIGRATIONS_PACKAGE = "nexus_chat.sql"
_NAME = re.compile(r"^(\d{3,})_[\w-]+\.sql$")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def migration_files(sql_dir: Traversable | None = None) -> list[Traversable]:
    directory = files(MIGRATIONS_PACKAGE) if sql_dir is None else sql_dir
    found = [p for p in directory.iterdir() if _NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def split_statements(text: str) -> list[str]:
    """Statements end with `;` at the end of a line; `--` comment lines are dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    statements, current = [], []
    for line in lines:
        current.append(line)
        if line.rstrip().endswith(";"):
            statement = "\n".join(current).strip().rstrip(";").strip()
            if statement:
                statements.append(statement)
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return statements


def check_identifier(name: str) -> str:
    """Database names are interpolated into DDL, so only plain identifiers are accepted."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid database name {name!r}: use letters, digits and _")
    return name


async def create_database(conn: aiomysql.Connection, name: str) -> None:
    async with conn.cursor() as cur:
        await cur.execute(f"CREATE DATABASE IF NOT EXISTS `{check_identifier(name)}` "
                          "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")


async def drop_database(conn: aiomysql.Connection, name: str) -> None:
    async with conn.cursor(QuietCursor) as cur:   # a database that is not there: a note
        await cur.execute(f"DROP DATABASE IF EXISTS `{check_identifier(name)}`")


async def apply_migrations(*, host: str, port: int, user: str, password: str, database: str,
                           sql_dir: Traversable | None = None) -> list[str]:
    """Create the database if needed and apply pending files. Returns the names applied.

    Safe to run twice and from two processes: a named lock serialises runners.
    """
    conn = await aiomysql.connect(host=host, port=port, user=user, password=password,
                                  charset="utf8mb4", autocommit=True,
                                  init_command="SET time_zone = '+00:00'")
    applied: list[str] = []
    try:
        await create_database(conn, database)
        await conn.select_db(database)
        async with conn.cursor() as cur:
            await cur.execute("SELECT GET_LOCK('nexus_chat_migrate', 60)")
            try:
                await cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " name VARCHAR(255) NOT NULL PRIMARY KEY,"
                    " applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))"
                    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
                await cur.execute("SELECT name FROM schema_migrations")
                done = {row[0] for row in await cur.fetchall()}
                for path in migration_files(sql_dir):
                    if path.name in done:
                        continue
                    # DDL commits implicitly in MySQL, so a file is not atomic; each file is
                    # recorded only after all its statements ran.
                    for statement in split_statements(path.read_text(encoding="utf-8")):
                        await cur.execute(statement)
                    await cur.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
                    applied.append(path.name)
                    log.info("migration applied name=%s", path.name)
            finally:
                await cur.execute("SELECT RELEASE_LOCK('nexus_chat_migrate')")
    finally:
        conn.close()
    return applied
