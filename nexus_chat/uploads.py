"""Uploaded files (docs/api.md#uploads-and-static-files): content checks and storage under
``<public_dir>/uploads``.

The client's file name is never used: the type is decided by the bytes (Pillow for images,
the container header for videos) and the stored name is a fresh uuid4. Stored URLs are
``/uploads/<folder>/<uuid>.<ext>``; they are served at ``/api/public/uploads/…``.
Pillow and the writes of new files run in the media worker processes, deletes in the default
executor, so the event loop never blocks.
"""
from __future__ import annotations

import asyncio
import functools
import io
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterable

from PIL import Image, UnidentifiedImageError

from .errors import too_large, validation_failed
from .media_pool import MediaPool

log = logging.getLogger("nexus_chat.uploads")

AVATARS, ICONS, STORIES = "avatars", "icons", "stories"
FOLDERS = (AVATARS, ICONS, STORIES)

MB = 1024 * 1024
AVATAR_MAX = 2 * MB
ICON_MAX = 2 * MB
STORY_MAX = 20 * MB
# Multipart framing and the text fields around a file.
MULTIPART_SLACK = 64 * 1024

IMAGE_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
CONTENT_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
    ".mp4": "video/mp4", ".mov": "video/quicktime", ".mkv": "video/x-matroska",
}

# Keep Pillow's decompression-bomb guard on (its default limit). Past it Pillow only warns
# (an error from twice the limit on), so the pixel count is checked here too, right after
# the header is read: no process-wide warnings filter is needed.
if Image.MAX_IMAGE_PIXELS is None:
    Image.MAX_IMAGE_PIXELS = 89_478_485


def image_extension(data: bytes, max_side: int | None = None) -> str | None:
    """'jpg' / 'png' / 'webp' if the bytes are such an image Pillow can read, else None.
    With ``max_side``, an image wider or taller than that raises ImageTooLarge, found from
    the header alone (nothing is decoded)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            if img.width * img.height > (Image.MAX_IMAGE_PIXELS or 0) or not img.width or not img.height:
                return None
            if max_side is not None and max(img.width, img.height) > max_side:
                raise ImageTooLarge(img.width, img.height, max_side)
            img.verify()
    except ImageTooLarge:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning,
            OSError, SyntaxError, ValueError, EOFError):
        return None
    except Exception:  # Pillow raises assorted errors on hostile input
        return None
    return IMAGE_EXTENSIONS.get(fmt or "")


class ImageTooLarge(Exception):
    def __init__(self, width: int, height: int, max_side: int) -> None:
        super().__init__(f"{width}x{height}")
        self.width, self.height, self.max_side = width, height, max_side


def video_extension(data: bytes) -> str | None:
    """'mp4' / 'mov' for an ISO-BMFF ``ftyp`` box, 'mkv' for a Matroska/WebM EBML header."""
    if len(data) >= 12 and data[4:8] == b"ftyp":
        size = int.from_bytes(data[0:4], "big")
        if size < 8 or size > 4096:
            return None
        return "mov" if data[8:12] == b"qt  " else "mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "mkv"
    return None


def write_new(data: bytes, path: Path) -> None:
    with open(path, "xb") as fh:
        fh.write(data)


def fill_atomically(target: Path, put: Callable[[Path], object]) -> None:
    """Create ``target``: ``put`` fills a hidden temporary file beside it, which is then
    renamed into place, so a reader never sees half a file; the temporary goes on any failure."""
    tmp = target.with_name(f".{target.name}.part")
    try:
        put(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Storage:
    """Files below ``<public_dir>/uploads``; only URLs of that shape are ever deleted."""

    def __init__(self, public_dir: Path) -> None:
        self.public_dir = Path(public_dir)
        self.root = self.public_dir / "uploads"

    def path_of(self, url: str | None) -> Path | None:
        """The file behind a stored URL, or None for anything that is not one of ours."""
        if not url or not url.startswith("/uploads/"):
            return None
        parts = url[len("/uploads/"):].split("/")
        if len(parts) != 2 or parts[0] not in FOLDERS:
            return None
        name = parts[1]
        stem, _, ext = name.partition(".")
        try:
            uuid.UUID(stem)
        except ValueError:
            return None
        if f".{ext}" not in CONTENT_TYPES:
            return None
        return self.root / parts[0] / name

    def write(self, folder: str, ext: str, data: bytes) -> str:
        return self._place(folder, ext, functools.partial(write_new, data))

    def move_in(self, folder: str, ext: str, source: Path) -> str:
        """Store a streamed upload's temporary file (moved: renamed when on the same disk)."""
        return self._place(folder, ext, lambda tmp: shutil.move(source, tmp))

    def _place(self, folder: str, ext: str, put: Callable[[Path], object]) -> str:
        directory = self.root / folder
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4()}.{ext}"
        fill_atomically(directory / name, put)
        return f"/uploads/{folder}/{name}"

    def store(self, folder: str, ext: str, data: bytes, source: Path | None) -> str:
        return self.write(folder, ext, data) if source is None else self.move_in(folder, ext, source)

    def delete(self, urls: Iterable[str | None]) -> None:
        for url in urls:
            path = self.path_of(url)
            if path is None:
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                log.warning("could not delete upload %s", url, exc_info=True)


def _storage(public_dir: Path) -> Storage:
    return Storage(public_dir)


def _check_size(field: str, size: int, limit: int) -> None:
    if size > limit:
        raise too_large(f"{field} exceeds {limit // MB} MB")
    if not size:
        raise validation_failed([f"{field}: The file is empty."])


# An upload is bytes (small ones) or the temporary file of a streamed form (spool.py), which
# is then moved into place rather than written again.
Source = bytes | Path


def _read(source: Source, limit: int | None = None) -> bytes:
    if isinstance(source, bytes):
        return source if limit is None else source[:limit]
    with open(source, "rb") as fh:
        return fh.read() if limit is None else fh.read(limit)


def _refused(source: Source, error: Exception) -> Exception:
    """A refused streamed upload's temporary file goes before the refusal is answered."""
    if not isinstance(source, bytes):
        source.unlink(missing_ok=True)
    return error


def _store_image(public_dir: Path, folder: str, field: str, source: Source, max_side: int) -> str:
    data = _read(source)
    try:
        ext = image_extension(data, max_side)
    except ImageTooLarge as exc:
        raise _refused(source, validation_failed([f"{field}: The image is {exc.width}x{exc.height} pixels; "
                                                  f"at most {max_side}x{max_side} is accepted."])) from None
    if ext is None:
        raise _refused(source, validation_failed([f"{field}: Must be a JPEG, PNG or WEBP image."]))
    return _storage(public_dir).store(folder, ext, data, None if isinstance(source, bytes) else source)


# The container header video_extension reads (an ftyp box is at most 4096 bytes).
VIDEO_HEADER = 4096


def _store_video(public_dir: Path, folder: str, field: str, source: Source) -> str:
    ext = video_extension(_read(source, VIDEO_HEADER))
    if ext is None:
        raise _refused(source, validation_failed([f"{field}: Must be an MP4, MOV or MKV video."]))
    if isinstance(source, bytes):
        return _storage(public_dir).write(folder, ext, source)
    return _storage(public_dir).move_in(folder, ext, source)


def _size(source: Source) -> int:
    return len(source) if isinstance(source, bytes) else source.stat().st_size


async def save_image(media: MediaPool, public_dir: Path, folder: str, field: str, source: Source, limit: int,
                     max_side: int) -> str:
    """Check the bytes are a JPEG/PNG/WEBP image of at most ``max_side`` pixels a side and
    store them; returns the stored URL. Pillow and the disk run in a media worker process
    (media_pool.py), never in the event loop's process."""
    _check_size(field, await asyncio.get_running_loop().run_in_executor(None, _size, source), limit)
    return await media.run(_store_image, public_dir, folder, field, source, max_side)


async def save_video(media: MediaPool, public_dir: Path, folder: str, field: str, source: Source,
                     limit: int) -> str:
    _check_size(field, await asyncio.get_running_loop().run_in_executor(None, _size, source), limit)
    return await media.run(_store_video, public_dir, folder, field, source)


async def remove(public_dir: Path, *urls: str | None) -> None:
    """Delete stored files (missing ones are fine). Never raises."""
    wanted = [u for u in urls if u]
    if not wanted:
        return
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, _storage(public_dir).delete, wanted)
    except Exception:
        log.warning("could not delete uploads", exc_info=True)
