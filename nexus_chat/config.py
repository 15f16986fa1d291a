"""Settings: defaults with help text, a TOML file, then environment variables.

Every setting is declared once in ``SETTINGS`` (default, parser, help, environment names); that
table drives loading, validation, ``nexus-chat check-config`` and the documentation in
``config.example.toml``. The typed ``Settings`` it fills is in ``nexus_chat.settings``.
Precedence (lowest first): default → ``NEXUS_CONFIG`` TOML file → environment variables.
"""
from __future__ import annotations

import ipaddress
import json
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .realtime import defaults as realtime_defaults
from .settings import Settings


class ConfigError(Exception):
    """An invalid setting; the message is one line naming it."""


def _int(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("must be a whole number")
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise ValueError(f"must be a whole number, got {str(value)!r}") from None
        if number < minimum or (maximum is not None and number > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"must be {bound}")
        return number
    return parse


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be on/off, true/false")


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text
    return parse


def _list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise ValueError("must be a list or a comma-separated string")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _networks(value: Any) -> tuple[str, ...]:
    items = _list(value)
    for item in items:
        ipaddress.ip_network(item, strict=False)  # raises ValueError on garbage
    return items


def _url(value: Any) -> str:
    text = _str(value).strip().rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return text


@dataclass(frozen=True)
class Setting:
    name: str            # attribute on Settings, and `section.key` in TOML
    default: Any
    parse: Callable[[Any], Any]
    help: str
    env: tuple[str, ...] = ()
    secret: bool = False

    @property
    def toml_key(self) -> tuple[str, str]:
        section, _, key = self.name.partition("_")
        return section, key


SETTINGS: tuple[Setting, ...] = (
    Setting("server_env", "development", _choice("development", "production"),
            "development or production; production refuses missing or example secrets.",
            ("NEXUS_ENV",)),
    Setting("server_host", "127.0.0.1", _str, "Address to listen on (nginx proxies to it).", ("NEXUS_HOST",)),
    Setting("server_port", 3000, _int(1, 65535), "TCP port to listen on.", ("PORT",)),
    Setting("server_public_url", "http://localhost:3000", _url,
            "Public base URL of this server, used in e-mail verification links.", ("APP_URL",)),
    Setting("server_frontend_url", "http://localhost:3001", _url,
            "Base URL of the web front end (verification redirect, password reset link).",
            ("FRONTEND_URL",)),
    Setting("server_cors_origins", ("http://localhost:3001",), _list,
            "Origins allowed by CORS and by the Socket.IO handshake.", ("NEXUS_CORS_ORIGINS",)),
    Setting("server_trusted_proxies", ("127.0.0.1/32", "::1/128"), _networks,
            "Proxies whose X-Forwarded-For is believed (IP addresses or CIDR networks).",
            ("NEXUS_TRUSTED_PROXIES",)),
    Setting("server_rate_limits", True, _bool, "Apply the per-IP/per-e-mail rate limits.",
            ("NEXUS_RATE_LIMITS",)),
    Setting("server_var_dir", "var", _str,
            "Directory for generated secrets, the private database, mail files and logs.",
            ("NEXUS_VAR_DIR",)),
    Setting("server_public_dir", "public", _str,
            "Directory served at /api/public/; uploads are stored in its uploads/ folder.",
            ("NEXUS_PUBLIC_DIR",)),
    Setting("server_api_reference", None, lambda v: None if v is None else _bool(v),
            "Serve the API reference at /api-reference (default: on in development, off in production).",
            ("NEXUS_API_REFERENCE",)),
    Setting("server_body_timeout_s", 60, _int(1, 3600),
            "Seconds a request body may take to arrive in full; a slower one is answered 408 "
            "and its connection closed.", ("NEXUS_BODY_TIMEOUT_S",)),
    Setting("server_shutdown_grace_s", 10, _int(0, 600),
            "Seconds to let in-flight requests finish on SIGTERM/SIGINT.", ("NEXUS_SHUTDOWN_GRACE_S",)),

    Setting("database_host", None, lambda v: None if v is None else _str(v),
            ("MariaDB host (10.11 is what the tests run on; MySQL 8 is not supported: the schema and queries use"
             " MariaDB's `JSON_COMPACT`/`JSON_QUERY`, `GROUP_CONCAT … LIMIT` and `JSON_ARRAYAGG … ORDER BY`)."
             " Unset: use 127.0.0.1:3306 if it answers, else a private MariaDB under var/."),
            ("DB_HOST",)),
    Setting("database_port", 3306, _int(1, 65535), "Database port.", ("DB_PORT",)),
    Setting("database_name", "nexus_chat", _str, "Database (schema) name; created if missing.", ("DB_NAME",)),
    Setting("database_user", "root", _str, "Database user.", ("DB_USERNAME",)),
    Setting("database_password", "", _str, "Database password.", ("DB_PASSWORD",), secret=True),
    # 2 cores: a handful of connections saturates MariaDB; more only queue inside the server.
    Setting("database_pool_size", 10, _int(1, 500), "Maximum connections in the pool.", ("NEXUS_DB_POOL_SIZE",)),

    Setting("jwt_access_secret", None, lambda v: None if v is None else _str(v),
            "HMAC secret of access tokens (>= 32 bytes).", ("JWT_ACCESS_TOKEN_SECRET",), secret=True),
    Setting("jwt_refresh_secret", None, lambda v: None if v is None else _str(v),
            "HMAC secret of refresh tokens.", ("JWT_REFRESH_TOKEN_SECRET",), secret=True),
    Setting("jwt_verify_email_secret", None, lambda v: None if v is None else _str(v),
            "HMAC secret of e-mail verification tokens.", ("JWT_VERIFY_EMAIL_SECRET",), secret=True),
    Setting("jwt_reset_password_secret", None, lambda v: None if v is None else _str(v),
            "HMAC secret of password reset tokens.", ("JWT_FORGOT_PASSWORD_SECRET",), secret=True),
    Setting("jwt_access_ttl_s", 3600, _int(1), "Access token lifetime (seconds).", ("JWT_ACCESS_EXPIRES_IN",)),
    Setting("jwt_refresh_ttl_s", 604800, _int(1), "Refresh token lifetime (seconds).", ("JWT_REFRESH_EXPIRES_IN",)),
    Setting("jwt_verify_email_ttl_s", 86400, _int(1), "Verification link lifetime (seconds).",
            ("JWT_VERIFY_EMAIL_EXPIRES_IN",)),
    Setting("jwt_reset_password_ttl_s", 3600, _int(1), "Reset link lifetime (seconds).",
            ("JWT_FORGOT_PASSWORD_EXPIRES_IN",)),
    Setting("auth_bcrypt_rounds", 12, _int(4, 16), "bcrypt cost (12 ≈ 0.3 s per hash on one core).",
            ("NEXUS_BCRYPT_ROUNDS",)),
    Setting("auth_login_failures_per_ip", 10, _int(1),
            "Failed logins allowed per client IP and window, whatever the e-mail (password "
            "spraying); then every login from that IP gets 429 until the window ends.",
            ("NEXUS_LOGIN_FAILURES_PER_IP",)),
    Setting("auth_login_failures_window_s", 300, _int(1, 86400),
            "The window of auth.login_failures_per_ip (seconds).", ("NEXUS_LOGIN_FAILURES_WINDOW_S",)),
    Setting("auth_revocation_poll_s", 5, _int(1, 3600),
            "How often each process reads sessions revoked by another process (seconds); "
            "revocations made by this process apply at once.", ("NEXUS_REVOCATION_POLL_S",)),

    Setting("mail_backend", None, lambda v: None if v is None else _choice("smtp", "file")(v),
            "smtp or file (default: file in development without MAIL_HOST, else smtp).",
            ("NEXUS_MAIL_BACKEND",)),
    Setting("mail_host", None, lambda v: None if v is None else _str(v), "SMTP host.", ("MAIL_HOST",)),
    Setting("mail_port", 1025, _int(1, 65535), "SMTP port.", ("MAIL_PORT",)),
    Setting("mail_user", "", _str, "SMTP user (empty: no login).", ("MAIL_USER",)),
    Setting("mail_password", "", _str, "SMTP password.", ("MAIL_PASS",), secret=True),
    Setting("mail_from", "Nexus Chat <noreply@nexus-chat.local>", _str, "From address.", ("MAIL_FROM",)),
    Setting("mail_tls", "none", _choice("none", "starttls", "tls"), "SMTP transport security.",
            ("NEXUS_MAIL_TLS",)),
    Setting("mail_poll_s", 2, _int(1, 3600), "How often the outbox sender looks for due mail (seconds).",
            ("NEXUS_MAIL_POLL_S",)),
    Setting("mail_probe_s", 10, _int(1, 3600),
            "While mail waits to be retried after the server was unreachable, how often the server "
            "is probed (connect, EHLO, QUIT); when it answers, the waiting mail is sent at once.",
            ("NEXUS_MAIL_PROBE_S",)),

    Setting("uploads_image_max_px", 4096, _int(16, 65535),
            "Largest width or height of an avatar or group icon (pixels); read from the header, "
            "so a pixel bomb is refused before it is decoded.", ("NEXUS_IMAGE_MAX_PX",)),
    Setting("uploads_story_image_max_px", 8192, _int(16, 65535),
            "Largest width or height of a story image (pixels).", ("NEXUS_STORY_IMAGE_MAX_PX",)),
    # Each upload in flight holds a temporary file (up to 20 MB) and waits for the media pool:
    # 3 covers a phone sending a few photos at once; 128 bounds the temporary files of one
    # process to ~2.6 GB and still takes 100 phones uploading at the same moment.
    Setting("uploads_concurrent_per_user", 3, _int(1, 1000),
            "Multipart uploads (attachments, stories, avatars, icons) one account may stream at once; "
            "past it, 429.", ("NEXUS_UPLOADS_PER_USER",)),
    Setting("uploads_concurrent_max", 128, _int(1, 100000),
            "Multipart uploads one server process streams at once, all accounts together; past it, 429.",
            ("NEXUS_UPLOADS_MAX",)),

    Setting("stories_ttl_s", 86400, _int(1), "Story lifetime (seconds).", ("NEXUS_STORY_TTL_S",)),
    Setting("stories_sweep_s", 60, _int(1), "Expired-story sweeper interval (seconds).", ("NEXUS_STORY_SWEEP_S",)),

    Setting("chat_attachment_dir", "", _str,
            "Where message attachments are stored, never under the public directory "
            "(empty: <server.var_dir>/attachments).",
            ("NEXUS_ATTACHMENT_DIR",)),
    Setting("chat_attachment_max_bytes", 20 * 1024 * 1024, _int(1024, 20 * 1024 * 1024),
            "Largest attachment (bytes; at most 20 MiB, the request ceiling).",
            ("NEXUS_ATTACHMENT_MAX_BYTES",)),
    Setting("chat_attachment_max_side", 8192, _int(64, 16384),
            "Largest width or height of an attached image (decoded pixels).",
            ("NEXUS_ATTACHMENT_MAX_SIDE",)),
    Setting("chat_attachment_file_types", ("pdf", "txt", "zip", "docx", "xlsx", "pptx", "doc", "xls", "ppt"),
            _list, "File types (besides images and videos) that may be attached; recognised by "
            "content: pdf, txt, zip, docx, xlsx, pptx, doc, xls, ppt.",
            ("NEXUS_ATTACHMENT_FILE_TYPES",)),
    Setting("chat_attachment_url_ttl_s", 3600, _int(60, 7 * 86400),
            "Lifetime of the signed attachment URLs in messages (seconds).",
            ("NEXUS_ATTACHMENT_URL_TTL_S",)),
    Setting("chat_attachment_orphan_ttl_s", 86400, _int(60),
            "Uploads never attached to a message are removed after this long (seconds).",
            ("NEXUS_ATTACHMENT_ORPHAN_TTL_S",)),
    Setting("chat_user_quota_bytes", 1024 ** 3, _int(0),
            "Attachment storage per user (bytes).", ("NEXUS_USER_QUOTA_BYTES",)),
    Setting("chat_attachment_accel_prefix", "", _str,
            "Behind nginx: internal location that serves the attachment directory "
            "(X-Accel-Redirect), e.g. /_nexus_attachments/ as in deploy/nginx.conf. Empty: the app sends the files.",
            ("NEXUS_ATTACHMENT_ACCEL_PREFIX",)),
    Setting("chat_edit_window_s", 172800, _int(0),
            "How long after sending a message its sender may edit it (seconds).",
            ("NEXUS_CHAT_EDIT_WINDOW_S",)),
    Setting("chat_group_commit_window_ms", 0, _int(0, 100),
            "Concurrent sends share one INSERT; under load, start such a write at most once per this many ms "
            "(larger batches, up to this much more latency). 0: as soon as the previous one ends.",
            ("NEXUS_GROUP_COMMIT_WINDOW_MS",)),

    Setting("realtime_ping_interval_ms", realtime_defaults.PING_INTERVAL_MS, _int(100),
            "Engine.IO server ping interval (ms).", ("NEXUS_PING_INTERVAL_MS",)),
    Setting("realtime_ping_timeout_ms", realtime_defaults.PING_TIMEOUT_MS, _int(100),
            "Engine.IO pong deadline (ms).", ("NEXUS_PING_TIMEOUT_MS",)),
    Setting("realtime_max_payload", realtime_defaults.MAX_PAYLOAD, _int(1024),
            "Largest Engine.IO packet/POST body (bytes).", ("NEXUS_MAX_PAYLOAD",)),
    Setting("realtime_connect_timeout_ms", realtime_defaults.CONNECT_TIMEOUT_MS, _int(100),
            "Time a client has to CONNECT a namespace (ms).", ("NEXUS_CONNECT_TIMEOUT_MS",)),
    Setting("realtime_max_buffer_bytes", realtime_defaults.MAX_BUFFER_BYTES, _int(1024),
            "Unsent bytes a socket may hold before it is disconnected.", ("NEXUS_MAX_BUFFER_BYTES",)),
    Setting("realtime_max_attachment_bytes", 0, _int(0),
            "Binary attachment bytes one connection may hold for a packet still incomplete; "
            "past it the connection is closed (0: realtime.max_payload).",
            ("NEXUS_MAX_ATTACHMENT_BYTES",)),
    Setting("realtime_attachment_timeout_ms", realtime_defaults.ATTACHMENT_TIMEOUT_MS, _int(100),
            "Time a binary packet's attachments may take to arrive before the connection is closed (ms).",
            ("NEXUS_ATTACHMENT_TIMEOUT_MS",)),
    Setting("realtime_max_unauthenticated", realtime_defaults.MAX_UNAUTHENTICATED, _int(1),
            "Engine.IO sessions not yet in an authenticated namespace (/chat), all clients together; "
            "further handshakes get 503.", ("NEXUS_MAX_UNAUTHENTICATED",)),
    Setting("realtime_max_unauthenticated_per_ip", realtime_defaults.MAX_UNAUTHENTICATED_PER_IP, _int(1),
            "Such sessions per client IP; further handshakes get 429 (with server.rate_limits on).",
            ("NEXUS_MAX_UNAUTHENTICATED_PER_IP",)),
    # Connection-state recovery changes what every client receives (an offset after each
    # stored event), which breaks clients written for plain events: off unless asked for.
    Setting("realtime_recovery", False, _bool,
            "Connection-state recovery: a client that reconnects within the window gets its "
            "socket back with every event it missed (official JS/Dart clients; see docs/realtime.md).",
            ("NEXUS_RECOVERY",)),
    Setting("realtime_recovery_window_s", 120, _int(1, 86400),
            "How long after a disconnection its session can be recovered (seconds).",
            ("NEXUS_RECOVERY_WINDOW_S",)),
    Setting("realtime_recovery_max_events", 1000, _int(1, 100000),
            "More missed events than this: no recovery, the client catches up over REST.",
            ("NEXUS_RECOVERY_MAX_EVENTS",)),
    Setting("realtime_event_log_keep_s", 7 * 86400, _int(60),
            "How long stored events stay readable by GET /api/chat/events (seconds).",
            ("NEXUS_EVENT_LOG_KEEP_S",)),
    Setting("realtime_adapter", "memory", _choice("memory", "redis"),
            "How rooms are shared: memory (one process) or redis (several processes, and Node servers "
            "using @socket.io/redis-adapter; see Scaling out).", ("NEXUS_REALTIME_ADAPTER",)),

    Setting("redis_url", "redis://127.0.0.1:6379/0", _str,
            "Redis for realtime.adapter = redis (redis://[:password@]host:port/db, rediss:// for TLS).",
            ("NEXUS_REDIS_URL",), secret=True),
    Setting("redis_key", "socket.io", _str,
            "Channel prefix; the same on every process and Node peer sharing the rooms "
            "(the `key` option of @socket.io/redis-adapter).", ("NEXUS_REDIS_KEY",)),
    Setting("redis_lease_ttl_s", 10, _int(1, 3600),
            "With realtime.adapter = redis, one process at a time runs the sweeper and the mail outbox, "
            "holding a lease in Redis; if it dies, another takes over within about this many seconds.",
            ("NEXUS_REDIS_LEASE_TTL_S",)),
    Setting("redis_process_ttl_s", 15, _int(2, 3600),
            "With realtime.adapter = redis, a process that has not renewed its heartbeat in Redis for "
            "this long is taken for dead: its users that no other process holds go offline (seconds).",
            ("NEXUS_REDIS_PROCESS_TTL_S",)),
    Setting("redis_ack_timeout_ms", 2000, _int(100, 60000),
            "With realtime.adapter = redis, a membership change, deleted account or revoked session is "
            "answered once every other process has applied it; one that has not acknowledged it within "
            "this long is taken for dead (milliseconds).", ("NEXUS_REDIS_ACK_TIMEOUT_MS",)),
    Setting("redis_gap_fill_max_events", 5000, _int(1, 1000000),
            "With realtime.adapter = redis, when Redis is back after an outage, a process delivers from the "
            "event log at most this many of one other process's events that Redis did not carry; with more it "
            "closes its connections instead, and the clients reconnect and catch up (recovery or REST).",
            ("NEXUS_REDIS_GAP_FILL_MAX_EVENTS",)),

    Setting("log_level", "info", _choice("debug", "info", "warning", "error"), "Log level.", ("NEXUS_LOG_LEVEL",)),
    Setting("log_format", "kv", _choice("kv", "json"), "Log line format: key=value or JSON.", ("NEXUS_LOG_FORMAT",)),
    Setting("log_file", "", _str, "Also write logs to this file, rotated daily (empty: stderr only).",
            ("NEXUS_LOG_FILE",)),
    Setting("log_retention_days", 14, _int(1, 3650), "Rotated log files kept.", ("NEXUS_LOG_RETENTION_DAYS",)),

    Setting("metrics_enabled", True, _bool, "Serve Prometheus metrics at /metrics.", ("NEXUS_METRICS",)),
    Setting("metrics_token", "", _str, "If set, /metrics requires `Authorization: Bearer <token>`.",
            ("NEXUS_METRICS_TOKEN",), secret=True),
)

EXAMPLE_SECRET_MARKERS = ("change-me", "changeme", "secret", "your_", "example")
_JWT_SECRETS = ("jwt_access_secret", "jwt_refresh_secret", "jwt_verify_email_secret",
                "jwt_reset_password_secret")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from defaults, the TOML file and the environment.

    ``overrides`` (used by tests) win over everything. Raises ConfigError with one line.
    """
    env = dict(os.environ if environ is None else environ)
    path = Path(env.get("NEXUS_CONFIG", "config.toml"))
    document = _read_toml(path)
    known = {s.toml_key for s in SETTINGS}
    for section, table in document.items():
        if not isinstance(table, dict):
            raise ConfigError(f"config file {path}: [{section}] must be a table")
        for key in table:
            if (section, key) not in known:
                raise ConfigError(f"config file {path}: unknown setting {section}.{key}")

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        section, key = setting.toml_key
        raw, source = setting.default, "default"
        if key in document.get(section, {}):
            raw, source = document[section][key], f"{path}"
        for var in setting.env:
            if env.get(var, "") != "":
                raw, source = env[var], f"${var}"
                break
        if setting.name in overrides:
            raw, source = overrides[setting.name], "override"
        try:
            values[setting.name] = raw if raw is None else setting.parse(raw)
        except (ValueError, TypeError) as exc:
            label = source if source.startswith("$") else f"{section}.{key}"
            raise ConfigError(f"invalid setting {label} ({setting.name}): {exc}") from None
        sources[setting.name] = source

    configured = values["database_host"] is not None
    if values["mail_backend"] is None:
        dev_without_smtp = values["server_env"] == "development" and values["mail_host"] is None
        values["mail_backend"] = "file" if dev_without_smtp else "smtp"
    if values["mail_backend"] == "smtp" and values["mail_host"] is None:
        if values["server_env"] == "production":
            raise ConfigError("invalid setting mail.host (MAIL_HOST): required when mail.backend is smtp")
        values["mail_host"] = "127.0.0.1"
    if values["server_api_reference"] is None:
        values["server_api_reference"] = values["server_env"] == "development"

    _apply_secrets(values, sources)
    return Settings(**values, sources=sources, database_configured=configured)


def _apply_secrets(values: dict[str, Any], sources: dict[str, str]) -> None:
    """Production: every JWT secret must be set and not an example. Development:
    missing ones are generated once and kept in var/secrets.json."""
    production = values["server_env"] == "production"
    missing = [name for name in _JWT_SECRETS if not values[name]]
    for name in _JWT_SECRETS:
        value = values[name]
        if value and production:
            lowered = value.lower()
            if len(value.encode()) < 32 or any(m in lowered for m in EXAMPLE_SECRET_MARKERS):
                raise ConfigError(f"invalid setting {name}: an example or short secret "
                                  f"(< 32 bytes) is refused in production")
    if not missing:
        return
    if production:
        env_name = next(s.env[0] for s in SETTINGS if s.name == missing[0])
        raise ConfigError(f"missing setting {missing[0]} ({env_name}): required in production")
    stored = _dev_secrets(Path(values["server_var_dir"]))
    for name in missing:
        values[name] = stored[name]
        sources[name] = "generated (var/secrets.json)"


def _dev_secrets(var_dir: Path) -> dict[str, str]:
    path = var_dir / "secrets.json"
    try:
        stored = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        stored = {}
    if all(stored.get(name) for name in _JWT_SECRETS):
        return stored
    for name in _JWT_SECRETS:
        stored.setdefault(name, secrets.token_urlsafe(48))
    var_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(stored, fh, indent=2)
    return stored


def describe(settings: Settings) -> list[tuple[str, str, str]]:
    """(name, shown value, source) for check-config; secrets are masked."""
    rows = []
    for setting in SETTINGS:
        value = getattr(settings, setting.name)
        shown = "***" if setting.secret and value else repr(value)
        rows.append((setting.name, shown, settings.sources.get(setting.name, "default")))
    return rows


def render_example() -> str:
    """The text of config.example.toml: every setting, commented, with its variables."""
    lines = ["# Nexus Chat configuration. Copy to config.toml (or point NEXUS_CONFIG at a file).",
             "# Every setting is optional; the value shown is the default. Environment variables",
             "# (named after each setting) override this file.", ""]
    section = None
    for setting in SETTINGS:
        name, key = setting.toml_key
        if name != section:
            section = name
            lines += [f"[{name}]"] if len(lines) == 4 else ["", f"[{name}]"]
        if lines[-1] != "":
            lines.append("")
        lines.append(f"# {setting.help}")
        if setting.env:
            lines.append(f"# env: {', '.join(setting.env)}")
        default = setting.default
        if default is None:
            lines.append(f'# {key} = ""')
        elif isinstance(default, bool):
            lines.append(f"# {key} = {'true' if default else 'false'}")
        elif isinstance(default, tuple):
            lines.append(f"# {key} = [{', '.join(json.dumps(v) for v in default)}]")
        elif isinstance(default, str):
            lines.append(f"# {key} = {json.dumps(default)}")
        else:
            lines.append(f"# {key} = {default}")
    return "\n".join(lines) + "\n"


def render_settings_table() -> str:
    """The settings table of the README (Configuration): one row per setting."""
    def shown(setting: Setting) -> str:
        default = setting.default
        if default is None:
            return "`—`"
        if isinstance(default, bool):
            return "`on`" if default else "`off`"
        if isinstance(default, tuple):
            return "`" + ", ".join(default) + "`"
        return f"`{default}`"
    lines = ["| Setting (`[section] key`) | Environment | Default | Meaning |", "|---|---|---|---|"]
    for setting in SETTINGS:
        section, key = setting.toml_key
        env = ", ".join(f"`{name}`" for name in setting.env) or "–"
        lines.append(f"| `[{section}] {key}` | {env} | {shown(setting)} | {setting.help} |")
    return "\n".join(lines) + "\n"
