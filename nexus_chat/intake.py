"""How an API handler takes in a request body: counted, bounded in time, and drained when refused.

Every body is streamed in and counted against the op's limit, so an oversized upload is refused
with 413 before it is buffered; Tornado's own size limit (a bare 400) is lifted for these
handlers. A request refused before its body is read (401, 404, 405, 413, 429, …) is answered
once the body has been read and dropped, so the connection serves the next request (the "401,
refresh the token, retry" flow, and nginx's upstream keep-alive pool). A declared body too large
to drain is not read at all: the answer goes at once with ``Connection: close``. A body that has
not arrived within ``server.body_timeout_s`` is answered 408 and its connection closed.

Large bodies (uploads) are read a few at a time. A hundred uploads streaming at once make
every turn of the event loop read a hundred sockets, and every other request waits for that
turn; queued, the others stay in their clients' send buffers (TCP backpressure) until a slot
frees, which happens as soon as a body is in. A request waits at most ``STREAM_WAIT_S`` for
its slot and is then read anyway: the queue orders uploads, it never refuses one, so a client
that trickles its body into a slot slows uploads down but cannot stop them.

A multipart body on an upload route is not buffered at all: it is parsed as it streams and
its files go to temporary files (spool.py), at most ``uploads.concurrent_per_user`` of one
account and ``uploads.concurrent_max`` in all at once (429 past either). Any other body of an
upload route (JSON, url-encoded) is held to JSON_BODY_LIMIT.
"""
from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any, Awaitable

from tornado import httputil
from tornado.ioloop import IOLoop

from . import forms
from .errors import ApiError, too_large
from .spool import FormSpool

log = logging.getLogger("nexus_chat.intake")

JSON_BODY_LIMIT = 1 << 20  # 1 MiB: the largest JSON body (100 member ids) is a few KiB
# The ceiling of any request body: a 20 MB story plus multipart framing. A refused request's
# declared body is read and dropped up to this size (keep-alive); past it the answer goes at
# once with Connection: close. A chunked one is dropped until it ends or the body clock rings.
MAX_REQUEST_BODY = 21 * 1024 * 1024
LARGE_BODY = 256 * 1024     # a body past this (or chunked, on an upload route) takes a slot
STREAM_SLOTS = 4
STREAM_WAIT_S = 10.0


class BodyStreams:
    """The slots for reading large bodies, one set per server process (``ctx.body_streams``)."""

    def __init__(self, slots: int = STREAM_SLOTS) -> None:
        self.slots = slots
        self.taken = 0        # bodies being read with a slot
        self.waiting = 0      # requests waiting for one
        self._free = asyncio.Semaphore(slots)

    async def enter(self, wait_s: float) -> bool:
        """True with a slot taken (give it back with ``leave``); False after ``wait_s``."""
        self.waiting += 1
        try:
            await asyncio.wait_for(self._free.acquire(), wait_s)
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1
        self.taken += 1
        return True

    def leave(self) -> None:
        self.taken -= 1
        self._free.release()


def body_complete(request: httputil.HTTPServerRequest) -> bool:
    """Whether the request's body has been read to its end (or there is none to read)."""
    future = getattr(request, "_body_future", None)   # set by Tornado for streamed bodies
    return future is None or future.done()


class BodyIntake:
    """Mixed into web.BaseHandler (a streaming RequestHandler with ``op`` and ``ctx``)."""

    def init_intake(self) -> None:
        self._chunks: list[bytes] = []
        self._received = 0
        self._refusal: ApiError | None = None
        self._stream_slot = False
        self._spool: FormSpool | None = None
        self._release_upload = None

    def open_intake(self) -> None:
        """Called first in prepare(): before Tornado starts reading the body."""
        self.request.connection.set_max_body_size(sys.maxsize)   # counted in data_received

    async def wait_for_stream(self) -> None:
        """Called in prepare() once the request is admitted: a large body waits for a slot."""
        if body_complete(self.request) or not self._large_body():
            return
        self._stream_slot = await self.ctx.body_streams.enter(STREAM_WAIT_S)
        if self._stream_slot:
            self.request._body_future.add_done_callback(lambda _: self.leave_stream())

    def leave_stream(self) -> None:
        """Gives the slot back (once): when the body is in, or the request ends without it."""
        if self._stream_slot:
            self._stream_slot = False
            self.ctx.body_streams.leave()

    def _large_body(self) -> bool:
        if self.op is None or self.op.body_limit <= JSON_BODY_LIMIT:
            return False
        declared = self.declared_length()
        return declared is None or declared > LARGE_BODY

    def raw_body(self) -> bytes:
        return b"".join(self._chunks)

    def streams_form(self) -> bool:
        """Whether this request's body is a form streamed to disk: an op with files, sent as
        multipart/form-data."""
        op = self.op
        return (op is not None and bool(op.files)
                and forms.media_type(self.request.headers.get("Content-Type", "")) == forms.MULTIPART)

    def body_limit(self) -> int:
        """The op's limit for a streamed form; any other body is kept in memory, so 1 MiB."""
        if self.op is None:
            return JSON_BODY_LIMIT
        return self.op.body_limit if self.streams_form() else min(self.op.body_limit, JSON_BODY_LIMIT)

    def open_spool(self, user_id: str, directory, file_limit: int) -> None:
        """Called in prepare() once the request is admitted, for a streamed form: takes an
        upload turn (429 past the caps) and starts the parse (400 without a boundary)."""
        self._release_upload = self.ctx.upload_gate.enter(user_id)
        try:
            self._spool = FormSpool(self.request.headers["Content-Type"], directory,
                                    files=self.op.files, file_limit=file_limit,
                                    fields_limit=FIELDS_LIMIT)
        except forms.MalformedForm as exc:
            raise ApiError(400, f"Malformed form body: {exc}") from None

    async def finish_spool(self) -> forms.Form:
        """The streamed form, its files written and closed (``self._spool.files``)."""
        assert self._spool is not None
        try:
            return await self._spool.finish()
        except forms.MalformedForm as exc:
            raise form_error(exc) from None
        except OSError as exc:
            log.warning("could not write an upload's temporary file: %s", exc)
            raise store_failed() from None

    def close_spool(self) -> None:
        """Temporary files removed, the upload turn given back: at the end of the request,
        however it ended (idempotent)."""
        if self._spool is not None:
            self._spool.discard()
        if self._release_upload is not None:
            self._release_upload()

    def refuse(self, error: ApiError) -> None:
        """Answer `error` instead of running the method, once the body is in (and dropped)."""
        if self._refusal is None:
            self._refusal = error
            setattr(self, self.request.method.lower(), self._answer_refusal)
        self._chunks = []
        self.close_spool()

    def can_drain(self) -> bool:
        try:
            declared = self.declared_length()
        except ApiError:
            return False
        return declared is None or declared <= MAX_REQUEST_BODY

    def declared_length(self) -> int | None:
        """The Content-Length (None when absent or chunked); 400 when it is not a number."""
        if "Content-Length" not in self.request.headers:
            return None
        text = self.request.headers["Content-Length"].split(",")[0].strip()
        if not text.isdigit():
            raise ApiError(400, "Invalid Content-Length")
        return int(text)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self._finished:
            return None
        self._received += len(chunk)
        if self._refusal is None:
            limit = self.body_limit()
            if self._received > limit:
                self.refuse(too_large(f"Request body exceeds {limit} bytes"))
            elif self._spool is None:
                self._chunks.append(chunk)
                return None
            else:
                return self._feed_spool(chunk)
        # Dropped. A chunked body is drained to its end (bounded by the body clock): closing
        # on a client still sending makes its kernel reset the connection, losing the answer.

        return None

    def _feed_spool(self, chunk: bytes) -> Awaitable[None] | None:
        assert self._spool is not None
        try:
            writing = self._spool.feed(chunk)
            return None if writing is None else self._written(writing)
        except forms.MalformedForm as exc:
            self.refuse(form_error(exc))
        except ApiError as error:
            if error.status != 413:
                self.refuse(error)
                return None
            # Past the file's limit: its temporary file goes now and the 413 is sent at once.
            # The rest of the body is still read and dropped before the connection closes:
            # closing on a client still sending resets it, and it may lose the answer.
            self.refuse(error)
            self.request.connection.set_max_body_size(self._received + MAX_REQUEST_BODY)
            self.answer_early(error)
        return None

    async def _written(self, writing: Awaitable[None]) -> None:
        try:
            await writing
        except OSError as exc:   # the disk is full, or the directory not writable
            log.warning("could not write an upload's temporary file: %s", exc)
            self.refuse(store_failed())

    def close_intake(self) -> None:
        self._chunks = []
        self.leave_stream()
        self.close_spool()

    def _answer_refusal(self, *args: Any, **kwargs: Any) -> None:
        assert self._refusal is not None
        raise self._refusal

    def start_body_clock(self) -> None:
        """Called last in prepare(), when Tornado is about to read the body."""
        future = getattr(self.request, "_body_future", None)
        if future is None or future.done():
            return
        loop = IOLoop.current()
        timeout = self.ctx.settings.server_body_timeout_s
        handle = loop.call_later(timeout, self._body_too_slow, timeout)
        future.add_done_callback(lambda _: loop.remove_timeout(handle))

    def _body_too_slow(self, timeout: int) -> None:
        if self._headers_written and not self._finished:
            self.request.connection.close()     # answered early (413), the rest never came
            return
        if not self._finished and not body_complete(self.request):
            self._answer_now(self._refusal or
                             ApiError(408, f"The request body did not arrive within {timeout} s"))

    def _answer_now(self, error: ApiError) -> None:
        """Answer while the body is still arriving; the connection is closed after it."""
        self._chunks = []
        self.send_error(error.status, exc_info=(type(error), error, None))


# A temporary file could not be written (disk full): the client may try again later.
def store_failed() -> ApiError:
    return ApiError(503, "The upload could not be stored; try again later", headers={"Retry-After": "30"})

# The text fields of a streamed form (a caption, a profile's name and bio: a few KiB).
FIELDS_LIMIT = 64 * 1024


def form_error(exc: forms.MalformedForm) -> ApiError:
    if exc.field_name is not None:
        return ApiError(400, "Validation failed", [str(exc)])
    return ApiError(400, f"Malformed form body: {exc}")
