"""E-mail: Jinja2 templates, a durable outbox, and a background sender.

A mail is INSERTed into ``mail_outbox`` in the same transaction as the change that causes it;
``OutboxSender`` delivers due rows (SMTP via aiosmtplib, or .eml files for the quick start)
and retries failures with exponential backoff, so nothing is lost while the server is down.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import email.policy
import logging
import os
import re
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from importlib.resources import files
from pathlib import Path
from typing import Any

import aiosmtplib
import jinja2

from .db import Database, Executor, db_unreachable
from .jsonutil import utcnow
from .lease import AlwaysHeld, Lease
from .queries import outbox

log = logging.getLogger("nexus_chat.mail")

TEMPLATES_PACKAGE = "nexus_chat.templates"   # templates/, shipped as package data
MAX_BACKOFF_S = 600  # retry a dead mail server at least every 10 minutes
# A mail being sent is set aside this long (longer than an SMTP attempt may take): another
# sender, which took over while this one was cut off from Redis, does not send it again.
CLAIM_S = 120


def _template_source(name: str) -> str | None:
    resource = files(TEMPLATES_PACKAGE).joinpath(name)
    return resource.read_text(encoding="utf-8") if resource.is_file() else None


_html = jinja2.Environment(loader=jinja2.FunctionLoader(_template_source), autoescape=True)
_text = jinja2.Environment(loader=jinja2.FunctionLoader(_template_source), autoescape=False,
                           keep_trailing_newline=True)


def render(template: str, **context: Any) -> tuple[str, str]:
    """(plain text, HTML) bodies of ``templates/<template>.{txt,html}``."""
    return (_text.get_template(f"{template}.txt").render(**context),
            _html.get_template(f"{template}.html").render(**context))


async def queue_mail(db: Executor, recipient: str, subject: str, template: str, **context: Any) -> None:
    text_body, html_body = render(template, subject=subject, **context)
    await outbox.enqueue_mail(db, recipient=recipient, subject=subject, text_body=text_body,
                              html_body=html_body, now=utcnow())


def build_message(sender: str, row: dict[str, Any]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row["recipient"]
    message["Subject"] = row["subject"]
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="nexus-chat.local")
    message.set_content(row["text_body"])
    message.add_alternative(row["html_body"], subtype="html")
    return message


def human_duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        n, unit = seconds // 86400, "day"
    elif seconds % 3600 == 0:
        n, unit = seconds // 3600, "hour"
    else:
        n, unit = max(1, seconds // 60), "minute"
    return f"{n} {unit}{'s' if n != 1 else ''}"


class SmtpBackend:
    def __init__(self, settings) -> None:
        self.settings = settings

    async def deliver(self, message: EmailMessage) -> None:
        s = self.settings
        await aiosmtplib.send(
            message, hostname=s.mail_host, port=s.mail_port,
            username=s.mail_user or None, password=s.mail_password or None,
            use_tls=s.mail_tls == "tls", start_tls=s.mail_tls == "starttls",
            timeout=30)

    async def probe(self) -> None:
        """Connect, say EHLO and QUIT: raises OSError while the server cannot be reached."""
        s = self.settings
        smtp = aiosmtplib.SMTP(hostname=s.mail_host, port=s.mail_port, use_tls=s.mail_tls == "tls",
                               start_tls=s.mail_tls == "starttls", timeout=10)
        await smtp.connect()
        try:
            await smtp.ehlo()
        finally:
            with contextlib.suppress(Exception):
                await smtp.quit()


class FileBackend:
    """Writes each message as an .eml file (quick start: no mail server needed), and beside it
    a .txt with the recipient, subject and plain-text body as UTF-8 text: the .eml is a real
    RFC 5322 message, so its body is quoted-printable and its links are wrapped and =-encoded;
    the .txt keeps them whole for `grep` and copy-paste. File names sort by time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def deliver(self, message: EmailMessage) -> None:
        stem = f"{utcnow():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        body = message.get_body(("plain",)).get_content()
        text = (f"To: {message['To']}\nSubject: {message['Subject']}\nDate: {message['Date']}\n"
                f"File: {stem}.eml\n\n{body}")
        eml = message.as_bytes(policy=email.policy.SMTP)   # CRLF line ends, as RFC 5322 has them
        await asyncio.get_running_loop().run_in_executor(None, self._write, stem, eml, text.encode("utf-8"))
        # docs/api.md#mail: in this development backend the link is logged so a new user can click it.
        # The SMTP backend never logs links (they carry tokens).
        link = next((w for w in body.split() if w.startswith(("http://", "https://"))), "")
        path = self.directory / f"{stem}.eml"
        log.info("mail written to=%s subject=%r file=%s link=%s", message["To"], message["Subject"], path, link)

    def _write(self, stem: str, eml: bytes, text: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for suffix, data in ((".eml", eml), (".txt", text)):
            path = self.directory / f"{stem}{suffix}"
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)


@dataclass(frozen=True)
class StoredMail:
    """A mail the file backend wrote, as `nexus-chat mail` shows it."""
    path: Path
    recipient: str
    subject: str
    date: str
    links: list[str]


def stored_mails(directory: Path) -> list[StoredMail]:
    """The .eml files of the file backend, oldest first (their names sort by time)."""
    mails = []
    for path in sorted(directory.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        mails.append(StoredMail(path, str(message["To"]), str(message["Subject"]), str(message["Date"]),
                                re.findall(r"https?://\S+", text)))
    return mails


def make_backend(settings) -> SmtpBackend | FileBackend:
    if settings.mail_backend == "file":
        return FileBackend(Path(settings.server_var_dir).resolve() / "mail")
    return SmtpBackend(settings)


class OutboxSender:
    """Background task: deliver due outbox rows; wake early when a mail is queued. With several
    processes only the one holding the background-jobs ``lease`` sends; each row is claimed in
    the database before it is sent, so no mail goes out twice even if two senders overlap."""

    def __init__(self, db: Database, settings, backend=None, lease: Lease | None = None) -> None:
        self.db = db
        self.lease = lease or AlwaysHeld()
        self.sender = settings.mail_from
        self.poll_s = settings.mail_poll_s
        self.probe_s = settings.mail_probe_s
        self.backend = backend or make_backend(settings)
        # True while mail may be waiting out a backoff because the server was unreachable
        # (and at start: an earlier run may have left some). The first delivery or probe
        # that gets through ends the backoff of all of them.
        self._backing_off = True
        self._last_probe = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopped = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        # The flag as well as cancel(): a library may turn the CancelledError into its own error.
        self._stopped = True
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while not self._stopped:
            try:
                if self.lease.held:
                    await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not db_unreachable(exc):   # an outage is logged once by the database tracker
                    log.exception("outbox pass failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            except asyncio.TimeoutError:
                pass

    async def send_due(self) -> int:
        """Deliver every due mail once; returns how many were sent."""
        sent = 0
        rows = await outbox.due_mail(self.db, utcnow())
        if not rows and self._backing_off:
            await self._probe()
        for row in rows:
            if self._stopped or not self.lease.held:
                break
            # Set it aside first: only the claim that changed the row may send it.
            if not await outbox.claim_mail(self.db, row["id"], row["next_attempt_at"],
                                           utcnow() + dt.timedelta(seconds=CLAIM_S)):
                continue
            try:
                await self.backend.deliver(build_message(self.sender, row))
            except Exception as exc:  # network errors, refused recipients, …
                delay = min(MAX_BACKOFF_S, self.poll_s * 2 ** min(row["attempts"], 10))
                await outbox.mark_mail_failed(self.db, row["id"], f"{type(exc).__name__}: {exc}",
                                              utcnow() + dt.timedelta(seconds=delay))
                log.warning("mail delivery failed id=%s attempt=%s retry_in_s=%s error=%s",
                            row["id"], row["attempts"] + 1, delay, type(exc).__name__)
                if isinstance(exc, OSError):   # unreachable: the rest of this pass would fail too
                    self._backing_off = True
                    break
                continue
            await outbox.mark_mail_sent(self.db, row["id"], utcnow())
            sent += 1
            if self._backing_off:
                await self._end_backoff()
        return sent

    async def _probe(self) -> None:
        """While mail waits out a backoff and none is due: every ``probe_s``, ask the server
        cheaply whether it is back, so an outage's end does not wait for the longest delay."""
        probe = getattr(self.backend, "probe", None)
        now = asyncio.get_running_loop().time()
        if now - self._last_probe < self.probe_s:
            return
        self._last_probe = now
        if probe is not None:
            try:
                await probe()
            except Exception:
                return   # still down; the backoff stands
        await self._end_backoff()

    async def _end_backoff(self) -> None:
        self._backing_off = False
        waiting = await outbox.end_backoff(self.db, utcnow())
        if waiting:
            log.info("mail server reachable again; %s waiting mail due now", waiting)
            self.wake()
