"""Settings: defaults, the TOML file, the original backend's variables, production rules."""
from __future__ import annotations

import dataclasses
import inspect
import json
import re
import types
import typing
from pathlib import Path

import pytest

from nexus_chat.config import SETTINGS, ConfigError, load_settings, render_example
from nexus_chat.realtime.engine import EngineServer
from nexus_chat.realtime.server import SocketServer
from nexus_chat.settings import Settings

STRONG = "x" * 40


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"NEXUS_CONFIG": str(tmp_path / "config.toml"), "NEXUS_VAR_DIR": str(tmp_path / "var"), **values}


def test_defaults_work_in_development_and_generate_secrets_once(tmp_path):
    first = load_settings(env(tmp_path))
    assert first.server_port == 3000 and first.server_env == "development"
    assert first.mail_backend == "file", "development without MAIL_HOST writes mail to var/mail/"
    assert len(first.jwt_access_secret) >= 32
    assert len({first.jwt_access_secret, first.jwt_refresh_secret, first.jwt_verify_email_secret,
                first.jwt_reset_password_secret}) == 4
    stored = json.loads((tmp_path / "var" / "secrets.json").read_text())
    assert stored["jwt_access_secret"] == first.jwt_access_secret
    assert (tmp_path / "var" / "secrets.json").stat().st_mode & 0o077 == 0
    second = load_settings(env(tmp_path))
    assert second.jwt_refresh_secret == first.jwt_refresh_secret, "kept across restarts"


def test_the_original_backends_environment_variables_work(tmp_path):
    settings = load_settings(env(tmp_path, PORT="4100", APP_URL="https://chat.example.com/",
                                 FRONTEND_URL="https://app.example.com", DB_HOST="db", DB_PORT="3307",
                                 DB_NAME="chat", DB_USERNAME="app", DB_PASSWORD="pw",
                                 JWT_ACCESS_TOKEN_SECRET=STRONG, JWT_ACCESS_EXPIRES_IN="900",
                                 MAIL_HOST="smtp.example.com", MAIL_PORT="587", MAIL_FROM="a@b.c"))
    assert settings.server_port == 4100
    assert settings.server_public_url == "https://chat.example.com"
    assert (settings.database_host, settings.database_port, settings.database_name,
            settings.database_user, settings.database_password) == ("db", 3307, "chat", "app", "pw")
    assert settings.database_configured
    assert settings.jwt_access_secret == STRONG and settings.jwt_access_ttl_s == 900
    assert settings.mail_backend == "smtp" and settings.mail_host == "smtp.example.com"


def test_nexus_variables_override_the_toml_file(tmp_path):
    (tmp_path / "config.toml").write_text('[server]\nport = 4200\nrate_limits = false\n'
                                          '[stories]\nttl_s = 60\n[auth]\nbcrypt_rounds = 10\n')
    settings = load_settings(env(tmp_path))
    assert settings.server_port == 4200 and settings.server_rate_limits is False
    assert settings.stories_ttl_s == 60 and settings.auth_bcrypt_rounds == 10
    settings = load_settings(env(tmp_path, PORT="4300", NEXUS_RATE_LIMITS="on", NEXUS_STORY_TTL_S="120",
                                 NEXUS_STORY_SWEEP_S="5", NEXUS_BCRYPT_ROUNDS="11", NEXUS_MAIL_BACKEND="file",
                                 NEXUS_CORS_ORIGINS="https://a.example, https://b.example"))
    assert settings.server_port == 4300 and settings.server_rate_limits is True
    assert settings.stories_ttl_s == 120 and settings.stories_sweep_s == 5
    assert settings.auth_bcrypt_rounds == 11 and settings.mail_backend == "file"
    assert settings.server_cors_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize("values, named", [
    ({"PORT": "abc"}, "PORT"),
    ({"PORT": "70000"}, "PORT"),
    ({"NEXUS_BCRYPT_ROUNDS": "40"}, "NEXUS_BCRYPT_ROUNDS"),
    ({"NEXUS_RATE_LIMITS": "maybe"}, "NEXUS_RATE_LIMITS"),
    ({"NEXUS_ENV": "staging"}, "NEXUS_ENV"),
    ({"APP_URL": "chat.example.com"}, "APP_URL"),
    ({"NEXUS_TRUSTED_PROXIES": "not-an-ip"}, "NEXUS_TRUSTED_PROXIES"),
])
def test_an_invalid_value_is_one_clear_line_naming_the_setting(tmp_path, values, named):
    with pytest.raises(ConfigError) as info:
        load_settings(env(tmp_path, **values))
    message = str(info.value)
    assert named in message and "\n" not in message


def test_unknown_or_malformed_toml_is_refused(tmp_path):
    (tmp_path / "config.toml").write_text("[server]\nprot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting server.prot"):
        load_settings(env(tmp_path))
    (tmp_path / "config.toml").write_text("[server\n")
    with pytest.raises(ConfigError, match="config file"):
        load_settings(env(tmp_path))


def test_production_refuses_missing_or_example_secrets(tmp_path):
    base = env(tmp_path, NEXUS_ENV="production", MAIL_HOST="smtp.example.com")
    with pytest.raises(ConfigError, match="JWT_ACCESS_TOKEN_SECRET"):
        load_settings(base)
    secrets = {"JWT_ACCESS_TOKEN_SECRET": STRONG + "a", "JWT_REFRESH_TOKEN_SECRET": STRONG + "b",
               "JWT_VERIFY_EMAIL_SECRET": STRONG + "c", "JWT_FORGOT_PASSWORD_SECRET": STRONG + "d"}
    assert load_settings({**base, **secrets}).server_env == "production"
    example = {**secrets, "JWT_ACCESS_TOKEN_SECRET": "your_access_secret"}
    with pytest.raises(ConfigError, match="jwt_access_secret"):
        load_settings({**base, **example})
    assert not (tmp_path / "var" / "secrets.json").exists(), "production never generates secrets"
    with pytest.raises(ConfigError, match="MAIL_HOST"):
        load_settings({**secrets, "NEXUS_CONFIG": base["NEXUS_CONFIG"], "NEXUS_ENV": "production"})


def test_config_example_documents_every_setting():
    text = (Path(__file__).resolve().parents[2] / "config.example.toml").read_text()
    assert text == render_example(), "regenerate: python -c 'from nexus_chat.config import render_example; " \
        "open(\"config.example.toml\", \"w\").write(render_example())'"
    sections = {}
    current = None
    for line in text.splitlines():
        header = re.match(r"^\[(\w+)\]", line)
        if header:
            current = header.group(1)
        key = re.match(r"^#?\s*(\w+)\s*=", line)
        if key and current:
            sections.setdefault(current, set()).add(key.group(1))
    for setting in SETTINGS:
        section, key = setting.toml_key
        assert key in sections.get(section, set()), f"config.example.toml lacks {section}.{key}"


def conforms(value: object, hint: object) -> bool:
    """Whether `value` is of the annotated type (the shapes Settings uses)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(conforms(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin is tuple:
        return isinstance(value, tuple) and all(isinstance(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is type(None):
        return value is None
    return isinstance(value, hint) and not (hint is int and isinstance(value, bool))


SETTING_HINTS = typing.get_type_hints(Settings)


def test_the_settings_dataclass_and_the_table_agree():
    """Settings has one typed field per SETTINGS row, in the same order, and nothing else but
    the two fields load_settings derives; a row's default is a value of the field's type."""
    names = [f.name for f in dataclasses.fields(Settings)]
    assert names == [s.name for s in SETTINGS] + ["sources", "database_configured"], \
        "add the new setting to nexus_chat/settings.py (typed, in the order of SETTINGS)"
    assert dataclasses.is_dataclass(Settings) and Settings.__dataclass_params__.frozen
    for setting in SETTINGS:
        if setting.default is None:   # decided by load_settings: checked on loaded values below
            continue
        assert setting.parse(setting.default) == setting.default, setting.name
        assert conforms(setting.default, SETTING_HINTS[setting.name]), (setting.name, setting.default)


@pytest.mark.parametrize("environment", ["development", "production"])
def test_loaded_settings_have_the_declared_types(tmp_path, environment):
    values = env(tmp_path, NEXUS_ENV=environment)
    if environment == "production":
        values.update(MAIL_HOST="smtp.example.com", DB_HOST="db.example.com",
                      JWT_ACCESS_TOKEN_SECRET=STRONG + "a", JWT_REFRESH_TOKEN_SECRET=STRONG + "b",
                      JWT_VERIFY_EMAIL_SECRET=STRONG + "c", JWT_FORGOT_PASSWORD_SECRET=STRONG + "d")
    settings = load_settings(values)
    wrong = {name: getattr(settings, name) for name, hint in SETTING_HINTS.items()
             if not conforms(getattr(settings, name), hint)}
    assert wrong == {}


def test_the_realtime_defaults_are_the_protocol_layers():
    """One source: the realtime.* defaults are the ones EngineServer and SocketServer use alone
    (they once said 1 MB of send buffer while the settings said 4 MB)."""
    by_name = {s.name: s.default for s in SETTINGS}
    for server in (EngineServer, SocketServer):
        parameters = inspect.signature(server).parameters
        for name in ("ping_interval_ms", "ping_timeout_ms", "max_payload", "max_buffer_bytes"):
            assert parameters[name].default == by_name[f"realtime_{name}"], (server.__name__, name)
    assert inspect.signature(SocketServer).parameters["connect_timeout_ms"].default == \
        by_name["realtime_connect_timeout_ms"]
