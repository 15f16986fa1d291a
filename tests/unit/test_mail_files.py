"""The development `file` mail backend: a valid RFC 5322 .eml per mail, and beside it a .txt
whose links are whole (the .eml body is quoted-printable: its long links are wrapped and
their `=` encoded, so they cannot be copied or grepped from it)."""
from __future__ import annotations

import asyncio
import email
import email.policy
import re

from nexus_chat.mail import FileBackend, build_message, render

LINK = ("http://localhost:3000/api/auth/verify-email?token=" + "eyJhbGciOiJIUzI1NiJ9." + "x" * 180
        + "==.sig")


def deliver_all(backend: FileBackend, count: int) -> None:
    async def run() -> None:
        for n in range(count):
            text, html = render("verify_email", subject="Verify", full_name=f"Ada {n}",
                                link=f"{LINK}{n}", valid_for="1 day")
            row = {"recipient": f"ada{n}@example.com", "subject": "Verify your Nexus Chat account",
                   "text_body": text, "html_body": html}
            await backend.deliver(build_message("Nexus Chat <noreply@nexus-chat.local>", row))
    asyncio.run(run())


def test_each_mail_is_an_eml_and_a_txt_with_whole_links(tmp_path):
    deliver_all(FileBackend(tmp_path / "mail"), 3)
    emls = sorted((tmp_path / "mail").glob("*.eml"))
    txts = sorted((tmp_path / "mail").glob("*.txt"))
    assert len(emls) == len(txts) == 3
    assert [p.stem for p in emls] == [p.stem for p in txts]
    assert not list((tmp_path / "mail").glob("*.tmp"))
    for n, (eml, txt) in enumerate(zip(emls, txts)):   # names sort in delivery order
        raw = eml.read_bytes()
        assert LINK.encode() not in raw, "the .eml body is quoted-printable, as the issue saw"
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert message["To"] == f"ada{n}@example.com"
        assert message["Subject"] and message["Date"] and message["Message-ID"]
        assert all(not part.defects for part in message.walk()), [p.defects for p in message.walk()]
        lines = raw.split(b"\r\n")
        assert raw.endswith(b"\r\n") and b"\n" not in b"".join(lines), "CRLF line ends (RFC 5322 §2.1)"
        assert max(len(line) for line in lines) <= 78, "no line longer than 78 characters (§2.1.1)"
        assert f"{LINK}{n}" in message.get_body(("plain",)).get_content()
        text = txt.read_text("utf-8")
        assert f"To: ada{n}@example.com\n" in text
        found = re.findall(r"http://localhost:3000/api/auth/verify-email\?token=[^ \n]*", text)
        assert found == [f"{LINK}{n}"], "the link is whole and only once"
