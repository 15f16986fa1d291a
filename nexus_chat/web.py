"""The HTTP core every handler stands on: envelopes, errors, validation, auth, CORS, limits.

Handlers declare one ``Op`` per HTTP method (summary, auth, schemas, errors); the same
declarations validate requests here and produce the OpenAPI document (nexus_chat/openapi.py).
Bodies are taken in by nexus_chat/intake.py: counted against the op's limit while they
stream, bounded in time, and drained when the request is refused, so keep-alive survives.
"""
from __future__ import annotations

import ipaddress
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import tornado.web
from marshmallow import Schema
from tornado import httputil

from . import forms, ratelimit
from .db import db_unreachable
from .errors import (ApiError, db_transient_error, error_body, method_not_allowed, reason_phrase,
                     too_large, too_many_requests, validation_failed)
from .intake import JSON_BODY_LIMIT, MAX_REQUEST_BODY, BodyIntake, body_complete  # noqa: F401 (re-exported)
from .jsonutil import dumps, iso, loads, utcnow
from .schemas.loading import load_schema
from .services import auth
from .services.attachments import store_of
from .services.auth import verify_access
from .tokens import Claims, bearer_token

log = logging.getLogger("nexus_chat.web")

# Request line and header limits, answered 414 / 431 in the envelope (Application.find_handler).
MAX_URL_BYTES = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024
# What Tornado buffers while looking for the end of the headers; past it the connection is
# dropped unanswered (nothing smaller can tell a client what went wrong).
HEADER_READ_LIMIT = 128 * 1024


@dataclass(frozen=True)
class Op:
    """One route + method: what it does, who may call it, and what it accepts."""
    summary: str
    auth: bool = True
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    files: dict[str, str] = field(default_factory=dict)  # multipart file field -> description
    multipart: bool = False      # body may be multipart/form-data (as well as JSON)
    body_limit: int = JSON_BODY_LIMIT   # a multipart body with files; any other: 1 MiB at most
    file_limit: int = 0          # the largest file of a multipart body (0: body_limit)
    status: int = 200
    errors: tuple[int, ...] = ()
    response: Any = None         # a Schema class, [Schema] for a list, or None
    rate_limit: ratelimit.Limit | None = None
    tag: str = ""


class ApiHandlerMixin(tornado.web.RequestHandler):
    """What every answer of this server carries, whichever Tornado handler class produces it:
    the security and CORS headers, and errors in the JSON envelope. ``BaseHandler`` and the
    static files' handler (handlers/public.py, a StaticFileHandler) both mix it in; a subclass
    sets ``request_id`` in ``initialize``."""

    request_id: str

    def allowed_methods(self) -> list[str]:
        """What a 405 answer's Allow header names."""
        return sorted(self.SUPPORTED_METHODS)

    def options(self, *args: Any, **kwargs: Any) -> None:
        """CORS preflight: 204 on every route; the CORS headers only for configured origins."""
        origin = self.request.headers.get("Origin")
        if origin and origin in self.application.ctx.settings.server_cors_origins:
            self.set_header("Access-Control-Allow-Methods", ", ".join(self.allowed_methods()))
            self.set_header("Access-Control-Allow-Headers",
                            self.request.headers.get("Access-Control-Request-Headers",
                                                     "Authorization, Content-Type"))
            self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.finish()

    def set_default_headers(self) -> None:
        # Called again by send_error(), so the error response keeps these too.
        if hasattr(self, "request_id"):
            self.set_header("X-Request-Id", self.request_id)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        self.clear_header("Server")
        self._cors_headers()

    def _cors_headers(self) -> None:
        origin = self.request.headers.get("Origin")
        # Runs from RequestHandler.__init__, before initialize(): use the application's ctx.
        if origin and origin in self.application.ctx.settings.server_cors_origins:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Credentials", "true")
            self.set_header("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
        self.add_header("Vary", "Origin")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        exc = db_transient_error(exc) or exc   # deadlock, lock wait or outage: 503, retry
        if isinstance(exc, ApiError):
            status, message, errors = exc.status, exc.message, exc.errors
            for name, value in exc.headers.items():
                self.set_header(name, value)
        elif isinstance(exc, tornado.web.HTTPError):
            status, message, errors = exc.status_code, exc.log_message or reason_phrase(exc.status_code), None
            if status == 405:
                message = "Method Not Allowed"
                self.set_header("Allow", ", ".join(self.allowed_methods()))
        else:
            status = status_code
            message = "Internal server error" if status >= 500 else reason_phrase(status)
            errors = None
        if not body_complete(self.request):
            # The rest of the body is never read, so it must not be taken for a next request.
            self.set_header("Connection", "close")
        self.set_status(status, reason_phrase(status))
        self.clear_header("Content-Type")
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(dumps(error_envelope(status, message, self.request.path, errors)))

    def answer_early(self, error: ApiError) -> None:
        """Send ``error`` now, while the request body is still arriving; the request ends
        (and the connection closes) once the rest of the body has been read and dropped."""
        body = dumps(error_envelope(error.status, error.message, self.request.path, error.errors))
        self.clear()
        self.set_status(error.status, reason_phrase(error.status))
        for name, value in error.headers.items():
            self.set_header(name, value)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Content-Length", str(len(body)))
        self.set_header("Connection", "close")
        self.write(body)
        self.flush()
        setattr(self, self.request.method.lower(), lambda *args, **kwargs: self.finish())

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[override]
        if isinstance(value, ApiError):
            return  # expected; the access log line carries the status
        if isinstance(value, tornado.web.HTTPError) and value.status_code < 500:
            return
        if db_unreachable(value):
            return  # an outage: the database tracker logs its start and its end, once each
        if db_transient_error(value) is not None:
            log.warning("transient database error request_id=%s path=%s error=%s",
                        self.request_id, self.request.path, value)
            return
        log.error("unhandled error request_id=%s method=%s path=%s", self.request_id,
                  self.request.method, self.request.path, exc_info=(typ, value, tb))


@tornado.web.stream_request_body
class BaseHandler(BodyIntake, ApiHandlerMixin):
    ops: dict[str, Op] = {}
    # The route's URL parameters (ids): validated by path_ids() and described in the OpenAPI document.
    path_params: type[Schema] | None = None

    def initialize(self) -> None:
        self.ctx = self.application.ctx
        self.request_id = self.request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
        self.user_id: str | None = None
        self.session_id: str | None = None
        self.init_intake()
        self.files: dict[str, Any] = {}   # spool.SpooledFile (streamed) or httputil.HTTPFile
        self.set_header("X-Request-Id", self.request_id)
        self.ctx.inflight.add(self)

    def on_finish(self) -> None:
        self.leave_stream()
        self.close_spool()
        self.ctx.inflight.discard(self)

    def on_connection_close(self) -> None:
        # Tornado's own fails the pending body, which ends _execute and frees its chunks.
        super().on_connection_close()
        self.close_intake()
        self.ctx.inflight.discard(self)

    @property
    def client_ip(self) -> str:
        return client_ip(self.request.remote_ip, self.request.headers, self.ctx.trusted_networks)

    # ---- request life cycle --------------------------------------------------------------
    @property
    def op(self) -> Op | None:
        return self.ops.get("GET" if self.request.method == "HEAD" else self.request.method)

    def allowed_methods(self) -> list[str]:
        methods = set(self.ops) | {"OPTIONS"}
        if "GET" in methods:
            methods.add("HEAD")
        return sorted(methods)

    async def prepare(self) -> None:
        self.open_intake()
        try:
            await self.admit()
            if self.streams_form() and not body_complete(self.request):
                self.open_spool(self.user_id or self.client_ip, upload_dir(self.ctx), self.file_limit())
        except ApiError as error:
            if not self.can_drain():
                raise   # answered now; write_error adds Connection: close
            self.refuse(error)
        else:
            await self.wait_for_stream()
        self.start_body_clock()

    async def admit(self) -> None:
        """The checks made before the body is read: method, rate limits, size, token."""
        if self.request.method == "OPTIONS":
            return
        op = self.op
        if op is None:
            raise method_not_allowed(self.allowed_methods())
        await self._check_rate(ratelimit.DEFAULT, self.client_ip)
        if op.rate_limit is not None:
            await self._check_rate(op.rate_limit, self.client_ip)
        declared = self.declared_length()
        limit = self.body_limit()
        if declared is not None and declared > limit:
            raise too_large(f"Request body exceeds {limit} bytes")
        if op.auth:
            self.user_id = self.authenticate()

    async def _check_rate(self, limit: ratelimit.Limit, key: str) -> None:
        wait = await self.ctx.rate_limiter.count(limit, key)
        if wait:
            raise too_many_requests(wait)

    async def limit_per_account(self, limit: ratelimit.Limit, account: str) -> None:
        """Count against (client IP, account), e.g. the e-mail of a login (docs/api.md#limits)."""
        await self._check_rate(limit, f"{self.client_ip}|{account.lower()}")

    def access_claims(self) -> Claims:
        """The claims of the request's valid access token (the account may be gone)."""
        claims = verify_access(self.ctx, bearer_token(self.request.headers.get("Authorization")))
        self.session_id = claims.sid
        return claims

    def authenticate(self) -> str:
        """The user id of a valid access token whose account still exists (the same check
        as the Socket.IO handshake's)."""
        claims = auth.authenticate(self.ctx, bearer_token(self.request.headers.get("Authorization")))
        self.session_id = claims.sid
        return claims.sub

    # ---- input ---------------------------------------------------------------------------
    def file_limit(self) -> int:
        """The largest file a multipart body of this op may carry (413 once past it)."""
        assert self.op is not None
        return self.op.file_limit or self.op.body_limit

    async def upload_args(self) -> dict[str, Any]:
        """``body_args`` of an op with files: a streamed form's fields, its files (on disk,
        spool.SpooledFile) in self.files; or a JSON / url-encoded body as body_args reads it."""
        if self._spool is None:
            return self.body_args()
        form = await self.finish_spool()
        self.files = self._spool.files
        return load_schema(self.op.body, form.fields)

    def body_args(self) -> dict[str, Any]:
        """The validated JSON (or, where allowed, multipart or url-encoded form) body of this op."""
        op = self.op
        assert op is not None and op.body is not None
        body = self.raw_body()
        content_type = self.request.headers.get("Content-Type", "")
        if op.multipart and forms.media_type(content_type) in forms.FORM_TYPES:
            return load_schema(op.body, self._parse_form(content_type, body))
        if not body.strip():
            data: Any = {}
        elif forms.media_type(content_type) != "application/json":
            raise ApiError(400, "Content-Type must be application/json"
                           + (", multipart/form-data or application/x-www-form-urlencoded"
                              if op.multipart else ""))
        else:
            try:
                data = loads(body)
            except ValueError:
                raise ApiError(400, "Malformed JSON body") from None
        self.files = {}
        return load_schema(op.body, data)

    def _parse_form(self, content_type: str, body: bytes) -> dict[str, str]:
        """The form's text fields; its files (only those the op declares) go to self.files."""
        try:
            form = forms.parse_form(content_type, body)
        except forms.MalformedForm as exc:
            if exc.field_name is not None:
                raise validation_failed([str(exc)]) from None
            raise ApiError(400, f"Malformed form body: {exc}") from None
        unknown = [name for name in form.files if name not in self.op.files]
        if unknown:
            raise validation_failed([f"{name}: Unknown field." for name in unknown])
        self.files = form.files
        return form.fields

    def path_ids(self, **values: str) -> dict[str, str]:
        """The URL parameters, validated by `path_params` like a body: a bad one is a 400 envelope."""
        assert self.path_params is not None
        loaded = load_schema(self.path_params, values)
        return {key: str(value) for key, value in loaded.items()}

    def query_args(self) -> dict[str, Any]:
        op = self.op
        assert op is not None and op.query is not None
        data = {key: values[-1].decode("utf-8", "replace")
                for key, values in self.request.query_arguments.items()}
        return load_schema(op.query, data)

    # ---- output --------------------------------------------------------------------------
    def respond(self, data: Any = None, message: str = "Success", status: int | None = None) -> None:
        status = status or (self.op.status if self.op else 200)
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(dumps({"success": True, "statusCode": status, "timestamp": iso(utcnow()),
                           "message": message, "data": data}))

    def compute_etag(self) -> None:
        # API answers are per user and change constantly; hashing every body cost ~1.5 %.
        return None

    async def head(self, *args: Any, **kwargs: Any) -> None:
        """HEAD on a GET route: the GET's status and headers (Tornado drops the body)."""
        result = self.get(*args, **kwargs)
        if result is not None:
            await result


def upload_dir(ctx: Any) -> Any:
    """Where streamed files wait: the attachments' private directory (never served)."""
    return store_of(ctx).root


def error_envelope(status: int, message: str, path: str, errors: list[str] | None = None,
                   **extra: Any) -> dict[str, Any]:
    """The error envelope of an HTTP answer (REST, Socket.IO handshake errors, static files):
    ``errors.error_body`` with the path and a timestamp."""
    return error_body(status, message, errors, path=path, timestamp=iso(utcnow()), **extra)


def client_ip(remote_ip: str | None, headers: httputil.HTTPHeaders,
              networks: tuple[ipaddress._BaseNetwork, ...]) -> str:
    """The client's address: the peer's, or behind a trusted proxy the right-most
    X-Forwarded-For hop that is not itself a trusted proxy (REST and Socket.IO handshakes)."""
    remote = remote_ip or ""
    forwarded = headers.get("X-Forwarded-For")
    if forwarded and _trusted(remote, networks):
        for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
            if not _trusted(hop, networks):
                return hop
    return remote


def _trusted(address: str, networks: tuple[ipaddress._BaseNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


class NotFoundHandler(BaseHandler):
    """Unknown routes: 404 in the envelope (every method)."""

    async def admit(self) -> None:
        raise ApiError(404, f"Cannot {self.request.method} {self.request.path}")


class OversizedRequestHandler(BaseHandler):
    """A request line or header section past its limit: 414 or 431 in the envelope."""

    def initialize(self, error: ApiError) -> None:  # type: ignore[override]
        super().initialize()
        self.error = error

    async def admit(self) -> None:
        raise self.error


def oversized(request: httputil.HTTPServerRequest) -> ApiError | None:
    """414 for a URL past MAX_URL_BYTES, 431 for headers past MAX_HEADER_BYTES, else None."""
    if len(request.uri or "") > MAX_URL_BYTES:
        return ApiError(414, f"The URL exceeds {MAX_URL_BYTES} bytes")
    size = sum(len(name) + len(value) + 4 for name, value in request.headers.get_all())
    if size > MAX_HEADER_BYTES:
        return ApiError(431, f"The request headers exceed {MAX_HEADER_BYTES} bytes")
    return None

