"""The typed settings every part of the server reads: one frozen dataclass, one field per row of
``nexus_chat.config.SETTINGS`` in the same order. Defaults, parsers, help texts and environment
variables live in that table (the one source of each default); ``load_settings`` builds this.
tests/unit/test_config.py checks that the two agree, field by field and type by type.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Settings:
    """All settings, flat: `section_key` (``server_port`` is ``[server] port`` in TOML)."""

    server_env: Literal["development", "production"]
    server_host: str
    server_port: int
    server_public_url: str
    server_frontend_url: str
    server_cors_origins: tuple[str, ...]
    server_trusted_proxies: tuple[str, ...]
    server_rate_limits: bool
    server_var_dir: str
    server_public_dir: str
    server_api_reference: bool               # unset: on in development, off in production
    server_body_timeout_s: int
    server_shutdown_grace_s: int

    database_host: str | None                # None: 127.0.0.1:3306 if it answers, else a private MariaDB
    database_port: int
    database_name: str
    database_user: str
    database_password: str
    database_pool_size: int

    jwt_access_secret: str                   # unset in development: generated once, kept in var/secrets.json
    jwt_refresh_secret: str
    jwt_verify_email_secret: str
    jwt_reset_password_secret: str
    jwt_access_ttl_s: int
    jwt_refresh_ttl_s: int
    jwt_verify_email_ttl_s: int
    jwt_reset_password_ttl_s: int

    auth_bcrypt_rounds: int
    auth_login_failures_per_ip: int
    auth_login_failures_window_s: int
    auth_revocation_poll_s: int

    mail_backend: Literal["smtp", "file"]    # unset: file in development without a mail host, else smtp
    mail_host: str | None                    # None only with the file backend
    mail_port: int
    mail_user: str
    mail_password: str
    mail_from: str
    mail_tls: Literal["none", "starttls", "tls"]
    mail_poll_s: int
    mail_probe_s: int

    uploads_image_max_px: int
    uploads_story_image_max_px: int
    uploads_concurrent_per_user: int
    uploads_concurrent_max: int

    stories_ttl_s: int
    stories_sweep_s: int

    chat_attachment_dir: str
    chat_attachment_max_bytes: int
    chat_attachment_max_side: int
    chat_attachment_file_types: tuple[str, ...]
    chat_attachment_url_ttl_s: int
    chat_attachment_orphan_ttl_s: int
    chat_user_quota_bytes: int
    chat_attachment_accel_prefix: str
    chat_edit_window_s: int
    chat_group_commit_window_ms: int

    realtime_ping_interval_ms: int
    realtime_ping_timeout_ms: int
    realtime_max_payload: int
    realtime_connect_timeout_ms: int
    realtime_max_buffer_bytes: int
    realtime_max_attachment_bytes: int       # 0: realtime_max_payload
    realtime_attachment_timeout_ms: int
    realtime_max_unauthenticated: int
    realtime_max_unauthenticated_per_ip: int
    realtime_recovery: bool
    realtime_recovery_window_s: int
    realtime_recovery_max_events: int
    realtime_event_log_keep_s: int
    realtime_adapter: Literal["memory", "redis"]

    redis_url: str
    redis_key: str
    redis_lease_ttl_s: int
    redis_process_ttl_s: int
    redis_ack_timeout_ms: int
    redis_gap_fill_max_events: int

    log_level: Literal["debug", "info", "warning", "error"]
    log_format: Literal["kv", "json"]
    log_file: str
    log_retention_days: int

    metrics_enabled: bool
    metrics_token: str

    sources: dict[str, str] = field(default_factory=dict)    # setting -> where its value came from
    database_configured: bool = False                        # database_host was set
