"""The real Debian nginx for tests: a site from deploy/ rendered with the test's ports and
paths (changing nothing else), wrapped in a minimal main config, run in the foreground under a
private prefix and stopped gracefully."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from nexus_chat.embedded_db import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def render_site(conf: str, upstreams: list[tuple[str, str]], nginx_port: int, public_dir: Path,
                attachment_dir: Path) -> str:
    """deploy/<conf> with the upstream lines replaced (``upstreams``: (as shipped, for the
    test) pairs), the test's listening port and directories; every replaced line must be there
    exactly once, so a change to the shipped file that a test no longer covers fails here."""
    site = (DEPLOY / conf).read_text()
    replacements = upstreams + [
        ("    listen 80;\n", f"    listen 127.0.0.1:{nginx_port};\n"),
        ("    listen [::]:80;\n", ""),
        ("alias /srv/nexus-chat/public/;", f"alias {public_dir}/;"),
        ("alias /srv/nexus-chat/var/attachments/;", f"alias {attachment_dir}/;"),
    ]
    for old, new in replacements:
        assert site.count(old) == 1, f"deploy/{conf} no longer contains {old!r}"
        site = site.replace(old, new)
    return site


def render_main(prefix: Path, site: str, *, log_format: str | None = None) -> str:
    """A main nginx.conf around ``site`` whose files all live below ``prefix``; ``log_format``:
    the access log's format (nginx's default when None)."""
    temp = "\n".join(f"    {kind}_temp_path {prefix}/{kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    access_log = (f"    log_format test '{log_format}';\n    access_log {prefix}/access.log test;"
                  if log_format else f"    access_log {prefix}/access.log;")
    return f"""user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
{access_log}
{temp}
{site}
}}
"""


@contextlib.contextmanager
def running_nginx(site_for_port, *, log_format: str | None = None) -> Iterator[tuple[str, Path]]:
    """nginx serving ``site_for_port(port)`` on a free loopback port; yields (its URL, its
    prefix directory, where access.log is). Skips the test when nginx is not installed."""
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install -y nginx)")
    prefix = Path(tempfile.mkdtemp(prefix="nexus-nginx-"))
    port = free_port()
    config = prefix / "nginx.conf"
    config.write_text(render_main(prefix, site_for_port(port), log_format=log_format))
    check = subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    # TZ=UTC: nginx's own 413 envelope carries the app's `…Z` timestamps (see deploy/nginx.conf).
    process = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(config), "-g", "daemon off;"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "TZ": "UTC"})
    try:
        for _ in range(200):
            if process.poll() is not None:
                raise AssertionError("nginx exited: " + process.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.025)
        else:
            raise AssertionError("nginx did not start listening")
        yield f"http://127.0.0.1:{port}", prefix
    finally:
        process.send_signal(signal.SIGQUIT)   # graceful: lets open connections finish
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(prefix, ignore_errors=True)
