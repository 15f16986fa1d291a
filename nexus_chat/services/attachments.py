"""Attachments (docs/api.md#attachments): uploading, attaching to a message, who may read
one, signed URLs for tags that cannot send a token, and clean-up.

An upload belongs to its uploader until a message carries it; from then on the participants
of that conversation, or the current members of that group, may read it. Everyone else gets
404, whether or not it exists.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from .. import spool
from ..attachment_files import AttachmentStore, Rejected, display_name, inspect
from ..db import Executor
from ..errors import ApiError, not_found, too_large, validation_failed
from ..jsonutil import utcnow
from ..queries import attachments as attachments_queries

if TYPE_CHECKING:
    from ..context import AppContext

MAX_PER_MESSAGE = 10
NOT_FOUND = "Attachment not found"
MB = 1024 * 1024


def store_of(ctx: AppContext) -> AttachmentStore:
    configured = ctx.settings.chat_attachment_dir
    root = Path(configured) if configured else Path(ctx.settings.server_var_dir) / "attachments"
    return AttachmentStore(root.resolve())


# ---- signed URLs ---------------------------------------------------------------------------
def _signing_key(ctx: AppContext) -> bytes:
    # A key of its own, derived from the access-token secret: a leaked URL signature says
    # nothing about tokens, and rotating that secret invalidates every URL.
    return hashlib.sha256(b"nexus-chat attachment urls\0" + ctx.settings.jwt_access_secret.encode()).digest()


def _signature(ctx: AppContext, attachment_id: str, variant: str, expires: int) -> str:
    message = f"{attachment_id}\0{variant}\0{expires}".encode()
    return hmac.new(_signing_key(ctx), message, hashlib.sha256).hexdigest()


def signed_url(ctx: AppContext, attachment_id: str, variant: str, expires: int) -> str:
    path = f"/api/chat/attachments/{attachment_id}" + ("/thumbnail" if variant == "thumbnail" else "")
    return path + "?" + urlencode({"expires": expires,
                                   "sig": _signature(ctx, attachment_id, variant, expires)})


def signature_valid(ctx: AppContext, attachment_id: str, variant: str, expires: int, sig: str) -> bool:
    if expires < time.time():
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    return hmac.compare_digest(_signature(ctx, attachment_id, variant, expires).encode(),
                               sig.encode("utf-8", "surrogatepass"))


# ---- shape ---------------------------------------------------------------------------------
def url_expiry(ctx: AppContext) -> int:
    """When URLs signed now expire (Unix seconds); one value for all of a page's URLs."""
    return int(time.time()) + ctx.settings.chat_attachment_url_ttl_s


def attachment_shape(ctx: AppContext, row: dict[str, Any], expires: int | None = None) -> dict[str, Any]:
    if expires is None:
        expires = url_expiry(ctx)
    shape = {"id": row["id"], "kind": row["kind"], "mimeType": row["mime_type"], "size": int(row["size"]),
             "name": row["name"], "url": signed_url(ctx, row["id"], "file", expires)}
    if row["width"] is not None:
        shape["width"], shape["height"] = int(row["width"]), int(row["height"])
    if row["has_thumbnail"]:
        shape["thumbnailUrl"] = signed_url(ctx, row["id"], "thumbnail", expires)
    return shape


def fresh_urls(ctx: AppContext, payload: Any, expires: int | None = None) -> Any:
    """A stored event's payload (decoded, changed in place) with the ``url`` and
    ``thumbnailUrl`` of every attachment in it signed anew: the ones stored with the event
    may have expired by the time it is replayed. Only a URL this server signed is renewed
    (its signature checked, its expiry not), so a payload can never turn an id it merely
    names into a readable link."""
    if expires is None:
        expires = url_expiry(ctx)
    if isinstance(payload, list):
        for item in payload:
            fresh_urls(ctx, item, expires)
    elif isinstance(payload, dict):
        found = payload.get("attachments")
        if isinstance(found, list):
            for item in found:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    _renew(ctx, item, "url", "file", expires)
                    _renew(ctx, item, "thumbnailUrl", "thumbnail", expires)
        for value in payload.values():
            if isinstance(value, (dict, list)):
                fresh_urls(ctx, value, expires)
    return payload


def _renew(ctx: AppContext, item: dict[str, Any], key: str, variant: str, expires: int) -> None:
    url = item.get(key)
    if not isinstance(url, str):
        return
    attachment_id = item["id"]
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        expected = urlsplit(signed_url(ctx, attachment_id, variant, 0)).path
        old_expires, sig = int(query["expires"][0]), query["sig"][0]
    except (KeyError, IndexError, ValueError):
        return
    if parts.path == expected and hmac.compare_digest(
            _signature(ctx, attachment_id, variant, old_expires).encode(), sig.encode("utf-8", "surrogatepass")):
        item[key] = signed_url(ctx, attachment_id, variant, expires)


async def with_attachments(ctx: AppContext, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sets ``attachments`` on each shaped message, with one query for all of them."""
    rows = await attachments_queries.for_messages(ctx.db, [m["id"] for m in messages])
    expires = url_expiry(ctx)
    by_message: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_message.setdefault(row["message_id"], []).append(attachment_shape(ctx, row, expires))
    for message in messages:
        message["attachments"] = by_message.get(message["id"], [])
    return messages


# ---- uploading -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Upload:
    name: str
    path: Path      # the streamed file (spool.py), moved into the store when kept as it is
    size: int


@dataclass(frozen=True)
class Stored:
    """What was stored (the bytes themselves stay out of the loop's hands)."""
    kind: str
    mime_type: str
    size: int
    width: int | None
    height: int | None
    has_thumbnail: bool


def _check_and_store(root: Path, attachment_id: str, upload: Upload, max_side: int,
                     file_types: tuple[str, ...]) -> Stored:
    """In a media pool worker process (so only plain values in and out)."""
    # Read whole here, in one of the pool's few workers: the memory is bounded by the pool's
    # size, not by the number of uploads in flight.
    data = upload.path.read_bytes()
    try:
        inspected = inspect(data, upload.name, max_side=max_side, file_types=file_types)
    except BaseException:
        upload.path.unlink(missing_ok=True)   # gone before the refusal is answered
        raise
    store = AttachmentStore(root)
    if inspected.kind == "image":   # re-encoded without metadata, with a thumbnail
        store.write(attachment_id, inspected.data, inspected.thumbnail)
    else:                           # kept as sent: the temporary file is moved into place
        store.move_in(attachment_id, upload.path)
    return Stored(inspected.kind, inspected.mime_type, len(inspected.data), inspected.width,
                  inspected.height, inspected.thumbnail is not None)


async def upload(ctx: AppContext, user_id: str, upload: Upload) -> dict[str, Any]:
    """Checks the bytes (in an executor: Pillow and the disk), stores the file and records it
    against the user's quota; returns the Attachment."""
    limit = ctx.settings.chat_attachment_max_bytes
    if upload.size > limit:
        raise too_large(f"file exceeds {limit / MB:g} MB")
    if not upload.size:
        raise validation_failed(["file: The file is empty."])
    attachment_id = str(uuid.uuid4())
    name = display_name(upload.name)
    try:
        inspected = await ctx.media.run(_check_and_store, store_of(ctx).root, attachment_id, upload,
                                        ctx.settings.chat_attachment_max_side,
                                        tuple(ctx.settings.chat_attachment_file_types))
    except Rejected as exc:
        if exc.unsupported:
            raise ApiError(415, str(exc)) from None
        raise validation_failed([f"file: {exc}"]) from None
    try:
        async with ctx.db.transaction() as tx:
            await attachments_queries.lock_uploader(tx, user_id)
            used = await attachments_queries.bytes_stored_by(tx, user_id)
            if used + inspected.size > ctx.settings.chat_user_quota_bytes:
                raise too_large("Storage quota exceeded: delete some attachments first")
            await attachments_queries.insert_attachment(
                tx, attachment_id=attachment_id, uploader_id=user_id, kind=inspected.kind,
                mime_type=inspected.mime_type, size=inspected.size, name=name,
                width=inspected.width, height=inspected.height,
                has_thumbnail=inspected.has_thumbnail, now=utcnow())
    except BaseException:
        await remove_files(ctx, [attachment_id])
        raise
    row = await attachments_queries.attachment_by_id(ctx.db, attachment_id)
    return attachment_shape(ctx, row)


async def attach(ctx: AppContext, tx: Executor, message_id: str, uploader_id: str,
                 attachment_ids: list[str]) -> list[dict[str, Any]]:
    """Inside the transaction that stores the message: claims the uploads, in the order
    given, and returns them as Attachments; raises 400 (rolling the message back) unless
    every one is the uploader's and not sent yet."""
    if len(set(attachment_ids)) != len(attachment_ids):
        raise validation_failed(["attachmentIds: The same attachment is listed twice."])
    claimed = await attachments_queries.attach_to_message(tx, message_id, uploader_id, attachment_ids)
    if claimed != len(attachment_ids):
        raise validation_failed(["attachmentIds: Unknown, not yours, or already sent."])
    await attachments_queries.mark_message(tx, message_id)
    rows = await attachments_queries.for_messages(tx, [message_id])
    expires = url_expiry(ctx)
    return [attachment_shape(ctx, row, expires) for row in rows]


# ---- reading -------------------------------------------------------------------------------
async def readable(ctx: AppContext, attachment_id: str, user_id: str | None) -> dict[str, Any]:
    """The attachment row if the user may read it (``user_id`` None: a valid signed URL)."""
    try:
        attachment_id = str(uuid.UUID(attachment_id))
    except ValueError:
        raise not_found(NOT_FOUND) from None
    if user_id is None:
        row = await attachments_queries.attachment_by_id(ctx.db, attachment_id)
    else:
        row = await attachments_queries.readable_attachment(ctx.db, attachment_id, user_id)
    if row is None:
        raise not_found(NOT_FOUND)
    return row


# ---- clean-up ------------------------------------------------------------------------------
async def remove_files(ctx: AppContext, attachment_ids: list[str]) -> None:
    if attachment_ids:
        await asyncio.get_running_loop().run_in_executor(None, store_of(ctx).delete, attachment_ids)


async def delete_for_message(tx: Executor, message_id: str) -> list[str]:
    """Inside the transaction that deletes a message: drops its attachment rows; returns the
    ids whose files the caller removes after the commit (``remove_files``)."""
    ids = await attachments_queries.ids_of_message(tx, message_id)
    await attachments_queries.delete_attachments(tx, ids)
    return ids


async def sweep_unattached(ctx: AppContext, batch: int = 500) -> int:
    """Uploads never attached within ``chat.attachment_orphan_ttl_s`` go, rows and files."""
    cutoff = utcnow() - dt.timedelta(seconds=ctx.settings.chat_attachment_orphan_ttl_s)
    total = 0
    while True:
        ids = await attachments_queries.unattached_before(ctx.db, cutoff, batch)
        if not ids:
            return total
        await attachments_queries.delete_attachments(ctx.db, ids)
        await remove_files(ctx, ids)
        total += len(ids)
        if len(ids) < batch:
            return total


# An upload's file is written before its row: a file younger than this may be one in flight.
STRAY_MIN_AGE_S = 3600


async def sweep_stray_files(ctx: AppContext, batch: int = 500) -> int:
    """Files whose row is gone (a deleted account, conversation or group took the rows), and
    temporary uploads a crash left behind (spool.py)."""
    store = store_of(ctx)
    loop = asyncio.get_running_loop()
    removed = await loop.run_in_executor(None, spool.remove_stale, store.root)
    on_disk = await loop.run_in_executor(None, store.stored_ids, STRAY_MIN_AGE_S)
    for start in range(0, len(on_disk), batch):
        chunk = on_disk[start:start + batch]
        present = await attachments_queries.existing_ids(ctx.db, chunk)
        gone = [i for i in chunk if i not in present]
        await remove_files(ctx, gone)
        removed += len(gone)
    return removed
