"""`nexus-chat` command line: serve, migrate, check-config, mail, conformance-server."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from . import __version__
from .config import ConfigError, describe, load_settings
from .embedded_db import EmbeddedDatabaseError, PrivateMariaDB, port_answers
from .logs import setup_logging
from .migrate import apply_migrations
from .runtime import DatabaseTarget, Runtime

log = logging.getLogger("nexus_chat")


def resolve_database(settings) -> tuple[DatabaseTarget, PrivateMariaDB | None]:
    """The configured server; else one answering on 127.0.0.1:3306; else a private MariaDB
    under var/mariadb/ (started here, stopped by the caller)."""
    if settings.database_configured:
        return DatabaseTarget(settings.database_host, settings.database_port, settings.database_user,
                              settings.database_password, settings.database_name), None
    if port_answers("127.0.0.1", 3306):
        return DatabaseTarget("127.0.0.1", 3306, settings.database_user, settings.database_password,
                              settings.database_name), None
    embedded = PrivateMariaDB(Path(settings.server_var_dir) / "mariadb")
    log.info("no database configured and nothing on 127.0.0.1:3306: starting a private MariaDB "
             "datadir=%s port=%s", embedded.datadir, embedded.port)
    embedded.start()
    return DatabaseTarget(embedded.host, embedded.port, embedded.user, embedded.password,
                          settings.database_name), embedded


async def _migrate(target: DatabaseTarget) -> list[str]:
    return await apply_migrations(host=target.host, port=target.port, user=target.user,
                                  password=target.password, database=target.name)


def cmd_migrate(settings) -> int:
    target, embedded = resolve_database(settings)
    try:
        applied = asyncio.run(_migrate(target))
    finally:
        if embedded:
            embedded.stop()
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


async def _serve(settings, target: DatabaseTarget) -> None:
    applied = await _migrate(target)
    if applied:
        log.info("migrations applied: %s", ", ".join(applied))
    runtime = await Runtime.start(settings, target)
    runtime.listen(settings.server_port, settings.server_host)
    log.info("Nexus Chat %s listening on http://%s:%s (env=%s, mail=%s)", __version__,
             settings.server_host, settings.server_port, settings.server_env, settings.mail_backend)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: finishing in-flight requests (up to %s s)", settings.server_shutdown_grace_s)
    await runtime.stop(grace_s=settings.server_shutdown_grace_s)
    log.info("stopped")


def cmd_serve(settings) -> int:
    target, embedded = resolve_database(settings)
    try:
        asyncio.run(_serve(settings, target))
    finally:
        if embedded:
            embedded.stop()
    return 0


async def _check_database(target: DatabaseTarget) -> str:
    import aiomysql
    conn = await aiomysql.connect(host=target.host, port=target.port, user=target.user,
                                  password=target.password, connect_timeout=5)
    try:
        async with conn.cursor() as cur:
            await cur.execute("SELECT VERSION()")
            (version,) = await cur.fetchone()
            await cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s"
                              " AND table_name = 'schema_migrations'", (target.name,))
            (has_schema,) = await cur.fetchone()
            applied = 0
            if has_schema:
                await cur.execute(f"SELECT COUNT(*) FROM `{target.name}`.schema_migrations")
                (applied,) = await cur.fetchone()
    finally:
        conn.close()
    return f"{version}; database {target.name!r}: {applied} migration(s) applied"


def cmd_check_config(settings) -> int:
    print("configuration:")
    for name, value, source in describe(settings):
        print(f"  {name:32} {value:45} ({source})")
    if not settings.database_configured and not port_answers("127.0.0.1", 3306):
        print("database: not configured and nothing on 127.0.0.1:3306; `serve` will start a "
              "private MariaDB under var/mariadb/")
        return 0
    target, _ = resolve_database(settings)
    try:
        info = asyncio.run(_check_database(target))
    except Exception as exc:
        print(f"database: cannot connect to {target.user}@{target.host}:{target.port}: {exc}")
        return 1
    print(f"database: {target.user}@{target.host}:{target.port} OK — {info}")
    return 0


def cmd_mail(settings, last: int, recipient: str | None, links_only: bool) -> int:
    """The newest mails the development `file` backend wrote, with their links whole."""
    from .mail import stored_mails
    directory = Path(settings.server_var_dir) / "mail"
    mails = [m for m in stored_mails(directory) if recipient is None or m.recipient.lower() == recipient.lower()]
    if not mails:
        print(f"no mail in {directory}/" + (f" to {recipient}" if recipient else "")
              + ("" if settings.mail_backend == "file" else f" (mail.backend is {settings.mail_backend})"),
              file=sys.stderr)
        return 1
    for mail in mails[-last:]:
        if links_only:
            print("\n".join(mail.links))
            continue
        print(f"{mail.date}  to {mail.recipient}  {mail.subject!r}  ({mail.path.name})")
        for link in mail.links:
            print(f"  {link}")
    return 0


def cmd_conformance_server(port: int) -> int:
    from .realtime.conformance import main as conformance_main
    conformance_main(port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nexus-chat",
        description="Nexus Chat server. Settings come from $NEXUS_CONFIG (default ./config.toml) "
                    "and environment variables; see config.example.toml.",
        epilog="Exit status: 0 success, 1 a problem at run time (e.g. the database is "
               "unreachable), 2 an invalid setting or command line.")
    parser.add_argument("--version", action="version", version=f"nexus-chat {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", help="apply pending migrations, then serve HTTP + Socket.IO "
                                 "(SIGTERM/SIGINT: finish in-flight requests, then stop)")
    sub.add_parser("migrate", help="apply pending database migrations and exit (run after upgrading)")
    sub.add_parser("check-config", help="validate the settings, show each value and its source "
                                        "(secrets masked), and test the database connection")
    mail = sub.add_parser("mail", help="show the newest mails the development `file` mail backend "
                                       "wrote to var/mail/, with their links (oldest first)")
    mail.add_argument("--last", type=int, default=5, metavar="N", help="how many (default 5)")
    mail.add_argument("--to", metavar="ADDRESS", help="only mails to this address")
    mail.add_argument("--links", action="store_true", help="print only the links, one per line")
    conf = sub.add_parser("conformance-server",
                          help="run the fixture server of the official Engine.IO/Socket.IO protocol test suites")
    conf.add_argument("--port", type=int, default=3000)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "conformance-server":
        logging.basicConfig(level=logging.INFO)
        return cmd_conformance_server(args.port)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"nexus-chat: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    try:
        if args.command == "serve":
            return cmd_serve(settings)
        if args.command == "migrate":
            return cmd_migrate(settings)
        if args.command == "mail":
            return cmd_mail(settings, max(1, args.last), args.to, args.links)
        return cmd_check_config(settings)
    except EmbeddedDatabaseError as exc:
        print(f"nexus-chat: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
