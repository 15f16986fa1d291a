"""Multipart uploads streamed to disk as they arrive (docs/api.md#uploads-and-static-files).

A form body is parsed while it streams in (forms.MultipartParser): text fields stay in memory
(bounded by the op's body limit), each file goes to a temporary file in the attachments'
private directory, written from the default executor in batches of WRITE_BATCH bytes. An
upload therefore holds at most about WRITE_BATCH + one received chunk of memory, however
large its file, and a file past its limit is refused (413) the moment it passes it.

Temporary files are named ``.upload-<uuid>.part``: never served, never taken for an
attachment by the sweeper's directory scan, and removed when the request ends, whether it
succeeded, failed or the client went away (the sweeper removes any a crash left behind).

``UploadGate`` bounds how many uploads stream at once, per user and in all: each holds a
temporary file and, later, a turn in the media pool.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Awaitable, Callable

from . import forms
from .errors import ApiError, too_large, validation_failed

log = logging.getLogger("nexus_chat.spool")

# Bytes gathered before one write in the executor: a hop to the executor costs the loop
# ~50 µs, a 3 MB photo takes 12 of them; 4 bodies are read at once (intake.STREAM_SLOTS),
# so the memory in flight is a few MB at most.
WRITE_BATCH = 256 * 1024
TEMP_PREFIX, TEMP_SUFFIX = ".upload-", ".part"
# A temporary file this old belongs to no request (a request's body must arrive within
# server.body_timeout_s, and its processing takes seconds): a crash left it.
STALE_TEMP_S = 3600


class SpooledFile:
    """A file part of a form, on disk. ``claim()`` hands its path over to the caller, who
    then owns the file (moves it into place); unclaimed, it is removed with the request."""

    def __init__(self, name: str, filename: str, content_type: str, path: Path) -> None:
        self.name, self.filename, self.content_type, self.path = name, filename, content_type, path
        self.size = 0

    async def read(self) -> bytes:
        """The whole file (small ones only: avatars, icons)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.path.read_bytes)


class _FileSink(forms.PartSink):
    def __init__(self, spool: FormSpool, file: SpooledFile, limit: int, field: str) -> None:
        self.spool, self.file, self.limit, self.field = spool, file, limit, field
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.handle = None          # opened by the first write, in the executor
        self.closed = False

    def write(self, data: bytes) -> None:
        self.file.size += len(data)
        if self.file.size > self.limit:
            raise too_large(f"{self.field} exceeds {self.limit / MB:g} MB")
        self.pending.append(data)
        self.pending_bytes += len(data)

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = b"".join(self.pending)
        self.pending, self.pending_bytes = [], 0
        return data

    # ---- in the executor ----
    def flush_blocking(self, data: bytes, last: bool) -> None:
        if self.handle is None:
            self.file.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.file.path, "xb")
        if data:
            self.handle.write(data)
        if last:
            self.handle.close()

    def discard_blocking(self) -> None:
        if self.handle is not None and not self.handle.closed:
            self.handle.close()
        self.file.path.unlink(missing_ok=True)


MB = 1024 * 1024


class FormSpool:
    """The parse of one multipart request body (web.py feeds it from data_received).

    ``file_limit``: the largest file of the op; ``fields_limit``: the text of all fields;
    ``files``: the file fields the op declares (any other is refused, 400)."""

    def __init__(self, content_type: str, directory: Path, *, files: dict[str, str],
                 file_limit: int, fields_limit: int) -> None:
        self.directory = directory
        self.declared = files
        self.file_limit = file_limit
        self.fields_limit = fields_limit
        self.form = forms.Form()
        self.files: dict[str, SpooledFile] = {}
        self._sinks: list[_FileSink] = []
        self._field_bytes = 0
        self._busy: asyncio.Future | None = None     # the write in the executor, if any
        self._discarded = False
        self._parser = forms.MultipartParser(content_type, self._on_part)   # MalformedForm

    def _on_part(self, part: forms.Part) -> forms.PartSink:
        if part.filename is None:
            return _CountedText(self, part.name)
        if part.name not in self.declared:
            raise validation_failed([f"{part.name}: Unknown field."])
        if part.name in self.files or any(s.file.name == part.name for s in self._sinks):
            return forms.Discard()      # the first file of a field counts, as before
        path = self.directory / f"{TEMP_PREFIX}{uuid.uuid4().hex}{TEMP_SUFFIX}"
        sink = _FileSink(self, SpooledFile(part.name, part.filename, part.content_type, path),
                         self.file_limit, part.name)
        self._sinks.append(sink)
        return sink

    def feed(self, data: bytes) -> Awaitable[None] | None:
        """Parse ``data``; an awaitable when a batch goes to disk (Tornado waits for it before
        reading more of the body: the client is held back, not buffered). Raises ApiError
        (413, 400) or forms.MalformedForm."""
        self._parser.feed(data)
        for sink in self._sinks:
            if sink.pending_bytes >= WRITE_BATCH:
                return self._flush(sink, last=False)
        return None

    async def finish(self) -> forms.Form:
        """After the last byte: the rest of every file written and closed. ``self.files``
        holds the files that have content (or a name: an empty file input sends neither)."""
        self._parser.end()
        for sink in self._sinks:
            if sink.file.size or sink.file.filename:
                await self._flush(sink, last=True)
                self.files.setdefault(sink.file.name, sink.file)
        return self.form

    async def _flush(self, sink: _FileSink, *, last: bool) -> None:
        if self._discarded:
            return
        loop = asyncio.get_running_loop()
        self._busy = loop.run_in_executor(None, sink.flush_blocking, sink.take(), last)
        try:
            await self._busy
        finally:
            self._busy = None

    def discard(self) -> None:
        """Remove every temporary file still there (a claimed one has been moved away): at
        the end of the request, however it ended. Runs after a write in progress."""
        if self._discarded:
            return
        self._discarded = True
        sinks = self._sinks
        for sink in sinks:
            sink.pending = []
        if not sinks:
            return
        loop = asyncio.get_running_loop()

        def remove(_: object = None) -> None:
            loop.run_in_executor(None, _discard_all, sinks)

        if self._busy is not None and not self._busy.done():
            self._busy.add_done_callback(remove)
        else:
            remove()


class _CountedText(forms.TextSink):
    def __init__(self, spool: FormSpool, name: str) -> None:
        super().__init__(spool.form, name)
        self.spool = spool

    def write(self, data: bytes) -> None:
        self.spool._field_bytes += len(data)
        if self.spool._field_bytes > self.spool.fields_limit:
            raise too_large(f"The form's text fields exceed {self.spool.fields_limit} bytes")
        super().write(data)


def _discard_all(sinks: list[_FileSink]) -> None:
    for sink in sinks:
        try:
            sink.discard_blocking()
        except OSError:
            log.warning("could not remove temporary upload %s", sink.file.path, exc_info=True)


def remove_stale(directory: Path, older_than_s: float = STALE_TEMP_S) -> int:
    """Temporary uploads a crash left behind (blocking: run it in an executor)."""
    if not directory.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            if not (entry.name.startswith(TEMP_PREFIX) and entry.name.endswith(TEMP_SUFFIX)):
                continue
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                continue
    return removed


class UploadGate:
    """How many multipart uploads may stream at once: ``per_user`` for one account,
    ``total`` for the server process. Past either, 429: each one holds a temporary file
    of up to 20 MB and waits for a turn in the media pool."""

    def __init__(self, per_user: int, total: int) -> None:
        self.per_user, self.total = per_user, total
        self.active: dict[str, int] = {}
        self.count = 0

    def enter(self, user_id: str) -> Callable[[], None]:
        """A release function (call it once), or raises 429."""
        if self.count >= self.total or self.active.get(user_id, 0) >= self.per_user:
            raise ApiError(429, "Too many uploads at once: wait for one to finish",
                           headers={"Retry-After": "1"})
        self.count += 1
        self.active[user_id] = self.active.get(user_id, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.count -= 1
            left = self.active[user_id] - 1
            if left:
                self.active[user_id] = left
            else:
                del self.active[user_id]

        return release
