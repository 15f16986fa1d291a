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


class Part:
    """One part as its headers announce it; ``filename`` None for a text field."""

    def __init__(self, name: str, filename: str | None, content_type: str) -> None:
        self.name, self.filename, self.content_type = name, filename, content_type


class PartSink:
    """Where a part's content goes (the caller's choice, per part): ``write`` is called with
    each piece as it arrives, ``close`` at the part's end. Either may raise."""

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Discard(PartSink):
    def write(self, data: bytes) -> None:
        pass


# Bytes the parser may hold between two pieces of a part's content: the start of what could
# be a boundary. Anything else it holds is one part's header block or a boundary line.
MAX_HEAD_BYTES = 16 * 1024   # a part's header lines (a name, a file name, a type: ~200 bytes)


class MultipartParser:
    """multipart/form-data fed piece by piece (``feed``, then ``end``): each part's content
    goes to the sink ``on_part(part)`` returns, as it arrives, so a 20 MB file never has to
    be held whole. Scanned with ``bytes.find`` (C speed); what it keeps between feeds is at
    most a boundary's length of content, or one header block (MAX_HEAD_BYTES)."""

    _PREAMBLE, _AFTER_DELIMITER, _HEADERS, _CONTENT, _END = range(5)

    def __init__(self, content_type: str, on_part) -> None:
        match = _BOUNDARY.search(content_type)
        if match is None:
            raise MalformedForm("no boundary in the Content-Type")
        self._delimiter = b"--" + (match.group(1) or match.group(2)).encode("latin-1")
        self._separator = b"\r\n" + self._delimiter
        self._on_part = on_part
        self._buffer = bytearray()
        self._state = self._PREAMBLE
        self._parts = 0
        self._sink: PartSink | None = None

    @property
    def complete(self) -> bool:
        return self._state == self._END

    def feed(self, data: bytes) -> None:
        if self._state == self._END:
            return      # the epilogue after the closing boundary is ignored
        self._buffer += data
        while self._step():
            pass

    def end(self) -> None:
        """The body is over: anything but a closed form is malformed."""
        if self._state != self._END:
            raise MalformedForm("the closing boundary is missing")

    def _step(self) -> bool:
        """One step of the parse; False when more bytes are needed."""
        buffer = self._buffer
        if self._state == self._PREAMBLE:
            lead = _LINE_ENDS.match(buffer).end()
            if len(buffer) - lead < len(self._delimiter):
                if len(buffer) > MAX_HEAD_BYTES:
                    raise MalformedForm("the body does not start with the boundary")
                return False
            if not buffer.startswith(self._delimiter, lead):
                raise MalformedForm("the body does not start with the boundary")
            del buffer[:lead + len(self._delimiter)]
            self._state = self._AFTER_DELIMITER
            return True
        if self._state == self._AFTER_DELIMITER:
            if len(buffer) < 2:
                return False
            if buffer.startswith(b"--"):
                self._state = self._END
                buffer.clear()
                return False
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                if buffer.strip(b" \t\r"):
                    raise MalformedForm("a boundary is followed by something else than a line end")
                if len(buffer) > MAX_HEAD_BYTES:
                    raise MalformedForm("a boundary line is too long")
                return False
            if buffer[:line_end].strip(b" \t"):
                raise MalformedForm("a boundary is followed by something else than a line end")
            del buffer[:line_end + 2]
            self._state = self._HEADERS
            return True
        if self._state == self._HEADERS:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    raise MalformedForm("a part's headers are too long")
                return False
            if head_end == 0:
                raise MalformedForm("a part has no headers")
            head = bytes(buffer[:head_end])
            del buffer[:head_end + 4]
            self._parts += 1
            if self._parts > MAX_PARTS:
                raise MalformedForm(f"more than {MAX_PARTS} parts")
            self._sink = self._on_part(_part(head))
            self._state = self._CONTENT
            return True
        if self._state == self._CONTENT:
            assert self._sink is not None
            found = buffer.find(self._separator)
            if found < 0:
                # Keep what could be the start of the separator, pass on the rest.
                ready = len(buffer) - (len(self._separator) - 1)
                if ready > 0:
                    self._sink.write(bytes(buffer[:ready]))
                    del buffer[:ready]
                return False
            if found:
                self._sink.write(bytes(buffer[:found]))
            del buffer[:found + len(self._separator)]
            sink, self._sink = self._sink, None
            sink.close()
            self._state = self._AFTER_DELIMITER
            return True
        return False


def _part(head: bytes) -> Part:
    headers = _headers(head)
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
    return Part(name, params.get("filename"), headers.get("content-type", "application/octet-stream"))


class TextSink(PartSink):
    """A text field, kept in memory (bounded by the caller's body limit), decoded at its end."""

    def __init__(self, form: Form, name: str) -> None:
        self.form, self.name, self.chunks = form, name, []

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def close(self) -> None:
        try:
            self.form.fields[self.name] = b"".join(self.chunks).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedForm(f"{self.name}: Not valid UTF-8.", self.name) from None


class _MemoryFile(PartSink):
    def __init__(self, form: Form, part: Part) -> None:
        self.form, self.part, self.chunks = form, part, []

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def close(self) -> None:
        content = b"".join(self.chunks)
        # a browser's empty file input sends filename="" and nothing
        if (self.part.filename or content) and self.part.name not in self.form.files:
            self.form.files[self.part.name] = HTTPFile(filename=self.part.filename, body=content,
                                                       content_type=self.part.content_type)


def parse_multipart(content_type: str, body: bytes) -> Form:
    """A whole multipart body in memory (the streaming handlers use MultipartParser with
    sinks of their own: web.py, spool.py)."""
    form = Form()

    def on_part(part: Part) -> PartSink:
        return TextSink(form, part.name) if part.filename is None else _MemoryFile(form, part)

    parser = MultipartParser(content_type, on_part)
    parser.feed(body)
    parser.end()
    return form


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
