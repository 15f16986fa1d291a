"""Attachment routes (docs/api.md#attachments): upload, and reading a file or its thumbnail
with a bearer token or a signed URL. Behind nginx the app checks and nginx sends the bytes
(X-Accel-Redirect, chat.attachment_accel_prefix)."""
from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote

from nexus_chat.attachment_files import THUMBNAIL_TYPE
from nexus_chat.errors import ApiError, forbidden
from nexus_chat.schemas import attachments as attachments_schemas
from nexus_chat.services import attachments
from nexus_chat.web import MAX_REQUEST_BODY, BaseHandler, Op

TAG = "Chat"
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# Past any file's size; longer digit strings are not converted (Python refuses past 4300 digits).
HUGE = 10 ** 18
FILE_CSP = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"
INVALID_LINK = "This link is invalid or has expired"


class AttachmentsHandler(BaseHandler):
    ops = {"POST": Op("Upload a photo, video or file to attach to a message (multipart `file`)",
                      body=attachments_schemas.UploadBody, multipart=True, files={"file": "The file (up to 20 MB)"},
                      body_limit=MAX_REQUEST_BODY, status=201, errors=(400, 401, 413, 415, 429),
                      response=attachments_schemas.AttachmentSchema, tag=TAG)}

    def file_limit(self) -> int:
        return self.ctx.settings.chat_attachment_max_bytes

    async def post(self) -> None:
        await self.upload_args()
        file = self.files.get("file")
        if file is None:
            raise ApiError(400, "Validation failed", ["file: Missing file."])
        shaped = await attachments.upload(self.ctx, self.user_id,
                                          attachments.Upload(file.filename or "", file.path, file.size))
        self.respond(shaped, "Attachment uploaded successfully")


_FILE = {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}


class _FileHandler(BaseHandler):
    """GET/HEAD one stored file. Authorised by a bearer token (participants only) or, for
    <img>/<video> tags, by the ``expires``/``sig`` of a signed URL."""
    variant = "file"
    # for the OpenAPI document (a bad id is not validated here: readable() answers 404)
    path_params = attachments_schemas.AttachmentPath
    openapi_responses = {"GET": {"200": {"description": "The file (not an envelope)", **_FILE},
                                 "206": {"description": "The requested `Range` of the file", **_FILE}}}

    async def _serve(self, attachmentId: str, include_body: bool) -> None:
        query = self.query_args()
        sig, expires = query["sig"], query["expires"]
        if sig is not None or expires is not None:
            if sig is None or expires is None or not attachments.signature_valid(
                    self.ctx, attachmentId, self.variant, expires, sig):
                raise forbidden(INVALID_LINK)
            row = await attachments.readable(self.ctx, attachmentId, None)
        else:
            row = await attachments.readable(self.ctx, attachmentId, self.authenticate())
        thumbnail = self.variant == "thumbnail"
        if thumbnail and not row["has_thumbnail"]:
            raise ApiError(404, attachments.NOT_FOUND)
        store = attachments.store_of(self.ctx)
        path = store.path(row["id"], thumbnail)
        loop = asyncio.get_running_loop()
        try:
            size = (await loop.run_in_executor(None, path.stat)).st_size
        except FileNotFoundError:
            raise ApiError(404, attachments.NOT_FOUND) from None
        self._file_headers(row, thumbnail)
        prefix = self.ctx.settings.chat_attachment_accel_prefix
        if prefix:
            # nginx serves the bytes (and Range) from its internal location.
            self.set_header("X-Accel-Redirect", prefix.rstrip("/") + "/" + store.relative_name(row["id"], thumbnail))
            self.finish()
            return
        start, end = self._range(size)
        self.set_header("Content-Length", str(end - start))
        if not include_body:
            self.finish()
            return
        chunks = store.read_range(row["id"], thumbnail, start, end)
        while True:
            chunk = await loop.run_in_executor(None, next, chunks, None)
            if chunk is None:
                break
            self.write(chunk)
            await self.flush()
        self.finish()

    def _file_headers(self, row: dict[str, Any], thumbnail: bool) -> None:
        self.set_header("Content-Type", THUMBNAIL_TYPE if thumbnail else row["mime_type"])
        disposition = "inline" if row["kind"] in ("image", "video") else "attachment"
        self.set_header("Content-Disposition",
                        f"{disposition}; filename*=UTF-8''{quote(row['name'], safe='')}")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", FILE_CSP)
        self.set_header("Cache-Control", "private, max-age=300")
        self.set_header("Accept-Ranges", "bytes")

    def _range(self, size: int) -> tuple[int, int]:
        """The byte range asked for (``Range: bytes=a-b``), 206 when partial; whole file else."""
        header = self.request.headers.get("Range")
        match = RANGE.match(header.strip()) if header else None
        if match is None or not any(match.groups()):
            return 0, size
        first, last = match.groups()
        if first == "":
            start, end = max(0, size - _position(last)), size          # the last N bytes
        else:
            start = _position(first)
            end = min(size, _position(last) + 1) if last else size
        if start >= size or start >= end:
            self.set_header("Content-Range", f"bytes */{size}")
            raise ApiError(416, "Range Not Satisfiable")
        self.set_status(206)
        self.set_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        return start, end

    async def get(self, attachmentId: str) -> None:
        await self._serve(attachmentId, True)

    async def head(self, attachmentId: str) -> None:
        await self._serve(attachmentId, False)


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) < 18 else HUGE


_READ_OP = dict(auth=False, query=attachments_schemas.SignedUrlQuery, errors=(401, 403, 404, 416), tag=TAG)


class AttachmentFileHandler(_FileHandler):
    ops = {"GET": Op("Download an attachment (bearer token of a participant, or a signed URL)",
                     **_READ_OP)}


class AttachmentThumbnailHandler(_FileHandler):
    variant = "thumbnail"
    ops = {"GET": Op("An image attachment's thumbnail (WEBP, longest side 320 px)", **_READ_OP)}


routes = [
    (r"/api/chat/attachments", AttachmentsHandler),
    (r"/api/chat/attachments/(?P<attachmentId>[^/]+)", AttachmentFileHandler),
    (r"/api/chat/attachments/(?P<attachmentId>[^/]+)/thumbnail", AttachmentThumbnailHandler),
]
