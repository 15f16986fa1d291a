"""Form bodies -> text fields and files: multipart/form-data and x-www-form-urlencoded.

Pure functions, no I/O. Strict where a lenient parser would guess: a part without headers,
without a name, with control characters in its name or headers, more parts than any route
needs, or framing that does not close is a MalformedForm (answered 400 by web.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from tornado.httputil import HTTPFile

MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
FORM_TYPES = (MULTIPART, URLENCODED)

MAX_PARTS = 32          # the largest form (profile: 3 fields and a file) has 4
MAX_NAME_LENGTH = 100

_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))', re.IGNORECASE)
_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s"]*))')
_LINE_ENDS = re.compile(rb"[\r\n]*")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")   # tab is allowed in header values


class MalformedForm(ValueError):
    """The body is not a well-formed form; the message says what is wrong."""

    def __init__(self, message: str, field_name: str | None = None) -> None:
        super().__init__(message)
        self.field_name = field_name


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, HTTPFile] = field(default_factory=dict)


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def parse_form(content_type: str, body: bytes) -> Form:
    """The form in `body`, by its Content-Type (one of FORM_TYPES)."""
    if media_type(content_type) == URLENCODED:
        return Form(fields=parse_urlencoded(body))
    return parse_multipart(content_type, body)


def parse_urlencoded(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=MAX_PARTS)
    except UnicodeDecodeError:
        raise MalformedForm("a value is not valid UTF-8 (or not percent-encoded)") from None
    except ValueError:
        raise MalformedForm(f"more than {MAX_PARTS} fields") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        _check_name(name)
        fields[name] = value
    return fields


def parse_multipart(content_type: str, body: bytes) -> Form:
    """Scanned by offsets with ``bytes.find`` (C speed, no per-byte Python): the only copy
    made of a part is its content, so a 20 MB upload costs two copies (joining the received
    chunks, cutting out the file) and a few scans, not one copy per step of the parse."""
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise MalformedForm("no boundary in the Content-Type")
    delimiter = b"--" + (match.group(1) or match.group(2)).encode("latin-1")
    lead = _LINE_ENDS.match(body).end()
    if body.startswith(delimiter + b"--", lead):
        return Form()   # no parts at all
    start = body.find(delimiter)
    if start < 0 or (start > 0 and body[start - 2:start] != b"\r\n"):
        raise MalformedForm("the body does not start with the boundary")
    separator = b"\r\n" + delimiter
    end = body.rfind(separator + b"--")
    if end < start:
        raise MalformedForm("the closing boundary is missing")
    pieces: list[tuple[int, int]] = []
    position = start + len(delimiter)
    while True:
        found = body.find(separator, position, end)
        pieces.append((position, end if found < 0 else found))
        if len(pieces) > MAX_PARTS:
            raise MalformedForm(f"more than {MAX_PARTS} parts")
        if found < 0:
            break
        position = found + len(separator)
    form = Form()
    for first, last in pieces:
        _add_part(form, body, first, last)
    return form


def _add_part(form: Form, body: bytes, first: int, last: int) -> None:
    """The part in ``body[first:last]``: after the boundary, optional whitespace, CRLF,
    header lines, an empty line, the content."""
    line_end = body.find(b"\r\n", first, last)
    if line_end < 0 or body[first:line_end].strip(b" \t"):
        raise MalformedForm("a boundary is followed by something else than a line end")
    head_start = line_end + 2
    head_end = body.find(b"\r\n\r\n", head_start, last)
    if head_end <= head_start:
        raise MalformedForm("a part has no headers")
    headers = _headers(body[head_start:head_end])
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise MalformedForm("a part has no Content-Disposition")
    kind, _, rest = disposition.partition(";")
    if kind.strip().lower() != "form-data":
        raise MalformedForm("a part's Content-Disposition is not form-data")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM.finditer(";" + rest)}
    name = params.get("name")
    if not name:
        raise MalformedForm("a part has no name")
    _check_name(name)
    filename = params.get("filename")
    content = body[head_end + 4:last]
    if filename is None:
        try:
            form.fields[name] = content.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedForm(f"{name}: Not valid UTF-8.", name) from None
    elif filename or content:   # a browser's empty file input sends filename="" and nothing
        form.files.setdefault(name, HTTPFile(
            filename=filename, body=content,
            content_type=headers.get("content-type", "application/octet-stream")))


def _headers(head: bytes) -> dict[str, str]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedForm("a part's headers are not valid UTF-8") from None
    headers: dict[str, str] = {}
    for line in text.split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or _CONTROL.search(line):
            raise MalformedForm("a part has a malformed header line")
        headers[name.strip().lower()] = value.strip()
    return headers


def _check_name(name: str) -> None:
    if len(name) > MAX_NAME_LENGTH or _CONTROL.search(name) or "\t" in name:
        raise MalformedForm("a field name is too long or has control characters")
