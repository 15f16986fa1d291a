"""The built wheel works on its own, as the README's deployment guide installs it: into a fresh
virtualenv, run from a directory that is not the checkout, it migrates a fresh database,
serves a healthy /api/health and renders its e-mail templates. Nothing is read from the checkout.
"""
from __future__ import annotations

import email
import email.policy
import json
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

import pymysql
import pytest

from nexus_chat.embedded_db import free_port, port_answers
from nexus_chat.migrate import migration_files

from .support import clean_env, db_env, drop_database

ROOT = Path(__file__).resolve().parents[2]
# What a working copy holds besides the source: never copied into the build tree.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "node_modules", "var", "uploads", "build", "dist",
                                    "*.egg-info", "__pycache__", ".pytest_cache", "config.toml")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the source tree, so the checkout gets no build/ or egg-info."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(work / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    (built,) = (work / "dist").glob("nexus_chat-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv holding the wheel and its dependencies (`pip install <wheel>`)."""
    target = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, timeout=120)
    installed = subprocess.run([str(target / "bin" / "pip"), "install", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr
    return target


def test_the_wheel_ships_handlers_sql_and_templates_inside_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"nexus_chat", wheel.name.split("-py3")[0] + ".dist-info"}
    assert {f"nexus_chat/handlers/{p.name}" for p in (ROOT / "handlers").glob("*.py")} <= names
    assert {f"nexus_chat/sql/{p.name}" for p in migration_files()} <= names
    templates = {p.name for p in (ROOT / "templates").iterdir() if p.suffix in (".html", ".txt")}
    assert templates and {f"nexus_chat/templates/{name}" for name in templates} <= names


def test_installed_wheel_migrates_and_serves_from_another_directory(venv, db_server, tmp_path):
    exe = venv / "bin" / "nexus-chat"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    name = f"nexus_wheel_{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = clean_env(tmp_path, PORT=str(port), NEXUS_RATE_LIMITS="off", **db_env(db_server, name))
    try:
        where = subprocess.run(
            [str(venv / "bin" / "python"), "-c",
             "import importlib.util, nexus_chat.handlers; "
             "print(nexus_chat.handlers.__file__, importlib.util.find_spec('handlers'))"],
            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
        handlers_file, top_level_handlers = where.stdout.split()
        assert Path(handlers_file).is_relative_to(venv), "imported from the installed wheel"
        assert top_level_handlers == "None", "no top-level `handlers` module is installed"

        migrated = subprocess.run([str(exe), "migrate"], cwd=elsewhere, env=env, capture_output=True,
                                  text=True, timeout=120)
        assert migrated.returncode == 0, migrated.stderr
        host, db_port, user, password = db_server
        conn = pymysql.connect(host=host, port=db_port, user=user, password=password, database=name)
        with conn.cursor() as cur:
            cur.execute("SELECT name FROM schema_migrations ORDER BY name")
            assert [row[0] for row in cur.fetchall()] == [p.name for p in migration_files()]
        conn.close()

        server = subprocess.Popen([str(exe), "serve"], cwd=elsewhere, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not port_answers("127.0.0.1", port, 0.2):
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
            base = f"http://127.0.0.1:{port}"
            with urllib.request.urlopen(f"{base}/api/health", timeout=30) as response:
                assert response.status == 200
                assert json.load(response)["data"] == {"status": "ok", "database": "up"}
            # registering queues the verification mail: the templates come from the package
            body = json.dumps({"username": "wheel_user", "fullName": "Wheel User", "email": "w@example.test",
                               "password": "secret-pass-1"}).encode()
            request = urllib.request.Request(f"{base}/api/auth/register", data=body,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=60) as response:
                assert response.status == 201
            mails, deadline = tmp_path / "var" / "mail", time.monotonic() + 60
            while not list(mails.glob("*.eml")):
                assert time.monotonic() < deadline, "the verification mail was not written"
                time.sleep(0.2)
            (eml,) = mails.glob("*.eml")
            message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
            assert message.get_body(("plain",)).get_content().startswith("Hi Wheel User,")
            assert "Wheel User" in message.get_body(("html",)).get_content()
        finally:
            server.terminate()
            assert server.wait(timeout=30) == 0
    finally:
        drop_database(db_server, name)
