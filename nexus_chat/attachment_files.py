"""Attachment files: what an upload is (by its bytes), cleaned images with thumbnails, and
the private directory they live in.

Everything here is blocking (Pillow, disk) and runs in an executor (services/attachments.py).
The client's file name is kept for display only; on disk a file is named by its attachment
id, which the server generated.
"""
from __future__ import annotations

import functools
import io
import logging
import os
import tempfile
import time
import unicodedata
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from .uploads import fill_atomically, video_extension, write_new

log = logging.getLogger("nexus_chat.attachments")

THUMBNAIL_SIDE = 320
THUMBNAIL_SUFFIX = ".thumb"
THUMBNAIL_TYPE = "image/webp"
JPEG_QUALITY = 88       # re-encoding strips metadata; 88 keeps photos visually unchanged
MAX_NAME_CHARS = 255
READ_CHUNK = 256 * 1024
# An animated GIF is decoded a whole canvas per frame, however small the frame's rectangle:
# a few hundred bytes can describe gigabytes. Bounded before anything is decoded.
MAX_GIF_FRAMES = 1000
MAX_GIF_PIXELS = 25_000_000     # frames × width × height (about 100 MB decoded)

IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
VIDEO_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "mkv": "video/x-matroska"}
FILE_TYPES = {
    "pdf": "application/pdf",
    "txt": "text/plain; charset=utf-8",
    "zip": "application/zip",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
}
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OOXML_PARTS = {"word/": "docx", "xl/": "xlsx", "ppt/": "pptx"}


class Rejected(Exception):
    """The upload is not an acceptable attachment; the message says why, for the user.
    ``unsupported``: a type that is not allowed (415), else a bad file of an allowed type (400)."""

    def __init__(self, message: str, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported

    def __reduce__(self):   # raised in the media pool's worker process, re-raised here
        return (Rejected, (str(self), self.unsupported))


@dataclass(frozen=True)
class Inspected:
    kind: str                  # image | video | file
    mime_type: str
    data: bytes                # what is stored (images: re-encoded without metadata)
    width: int | None = None
    height: int | None = None
    thumbnail: bytes | None = None


def display_name(name: str | None) -> str:
    """The client's file name, for showing only: no directories, no control characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return clean[:MAX_NAME_CHARS] or "file"


# ---- recognising the bytes -----------------------------------------------------------------
def inspect(data: bytes, name: str, *, max_side: int, file_types: Iterable[str]) -> Inspected:
    """Decide what the upload is by its content; images come back cleaned, with a thumbnail."""
    image = _inspect_image(data, max_side)
    if image is not None:
        return image
    video = video_extension(data)
    if video is not None:
        return Inspected("video", VIDEO_TYPES[video], data)
    kind = _file_type(data, name)
    if kind is None or kind not in set(file_types):
        raise Rejected("This type of file cannot be attached.", unsupported=True)
    return Inspected("file", FILE_TYPES[kind], data)


def _inspect_image(data: bytes, max_side: int) -> Inspected | None:
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format
            width, height = probe.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        return None
    if fmt not in IMAGE_TYPES:
        return None
    if not width or not height or width > max_side or height > max_side:
        raise Rejected(f"Images may be at most {max_side}×{max_side} pixels.")
    try:
        cleaned, size, thumbnail = _clean_image(data, fmt)
    except Rejected:
        raise
    except Exception:   # Pillow raises assorted errors on truncated or hostile files
        raise Rejected("The image could not be read.") from None
    return Inspected("image", IMAGE_TYPES[fmt], cleaned, size[0], size[1], thumbnail)


def _clean_image(data: bytes, fmt: str) -> tuple[bytes, tuple[int, int], bytes]:
    """Re-encode without EXIF, XMP, comments or text chunks (a phone photo's GPS position
    must not reach the recipient), upright as the camera meant it; and a thumbnail. Only the
    colour profile is kept, so colours stay right."""
    with Image.open(io.BytesIO(data)) as img:
        icc = img.info.get("icc_profile")
        extra = {"icc_profile": icc} if icc else {}
        if fmt == "GIF" and getattr(img, "is_animated", False):
            _check_animation(img)
            durations = [frame.info.get("duration", 100) for frame in ImageSequence.Iterator(img)]
            frames = [_without_metadata(frame.copy()) for frame in ImageSequence.Iterator(img)]
            cleaned = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:],
                              loop=img.info.get("loop", 0), duration=durations)
            first = frames[0]
        else:
            first = _without_metadata(ImageOps.exif_transpose(img))
            if fmt == "JPEG":
                cleaned = encoded(first.convert("RGB"), "JPEG", quality=JPEG_QUALITY, optimize=True, **extra)
            elif fmt == "WEBP":
                cleaned = encoded(first, "WEBP", quality=90, **extra)
            else:
                cleaned = encoded(first, fmt, **extra)
        size = first.size
        thumb = first.convert("RGBA" if first.mode in ("RGBA", "LA", "P", "PA") else "RGB")
        thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return cleaned, size, encoded(thumb, "WEBP", quality=80)


def encoded(img: Image.Image, fmt: str, **params: object) -> bytes:
    """``img`` saved as ``fmt``, through a temporary file. Pillow's encoders release the GIL
    only when they write to a file descriptor: into a BytesIO the JPEG encoder holds it for
    the whole image (70 ms for a 3 MB photo with ``optimize``), and the event loop, which
    needs the GIL for every socket it serves, stands still meanwhile."""
    with tempfile.TemporaryFile() as fh:
        img.save(fh, fmt, **params)
        fh.seek(0)
        return fh.read()


def _check_animation(img: Image.Image) -> None:
    """Refuses an animation too large to decode, counting its frames only up to the limit
    (each step of the count composes a whole canvas)."""
    allowed = min(MAX_GIF_FRAMES, MAX_GIF_PIXELS // (img.width * img.height))
    frames = 0
    while frames <= allowed:
        try:
            img.seek(frames)
        except EOFError:
            break
        frames += 1
    img.seek(0)
    if frames > MAX_GIF_FRAMES:
        raise Rejected(f"An animated GIF may have at most {MAX_GIF_FRAMES} frames.")
    if frames > allowed:
        raise Rejected(f"This animation is too large: frames × width × height may be at most "
                       f"{MAX_GIF_PIXELS:,}.")


def _without_metadata(img: Image.Image) -> Image.Image:
    """The pixels only: Pillow writes what ``info`` holds (comments, EXIF) when saving."""
    img.load()
    keep = {key: img.info[key] for key in ("transparency", "background") if key in img.info}
    img.info = keep
    return img


def _file_type(data: bytes, name: str) -> str | None:
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_type(data)
    if data.startswith(OLE_SIGNATURE):
        # Legacy Office files share one container; the name's extension tells which (a wrong
        # one only changes the download's type, never how the bytes are treated).
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        return ext if ext in ("doc", "xls", "ppt") else "doc"
    if _is_text(data):
        return "txt"
    return None


def _zip_type(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None
    if "[Content_Types].xml" in names:
        for prefix, kind in OOXML_PARTS.items():
            if any(n.startswith(prefix) for n in names):
                return kind
    return "zip"


def _is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(unicodedata.category(c) == "Cc" and c not in "\t\n\r\f" for c in text)


# ---- the directory -------------------------------------------------------------------------
class AttachmentStore:
    """``<root>/<id>`` and ``<root>/<id>.thumb``; only names made of a UUID are ever touched."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, attachment_id: str, thumbnail: bool = False) -> Path:
        name = str(uuid.UUID(attachment_id))   # raises ValueError on anything else
        return self.root / (name + (THUMBNAIL_SUFFIX if thumbnail else ""))

    def relative_name(self, attachment_id: str, thumbnail: bool = False) -> str:
        return self.path(attachment_id, thumbnail).name

    def write(self, attachment_id: str, data: bytes, thumbnail: bytes | None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for content, is_thumb in ((data, False), (thumbnail, True)):
            if content is None:
                continue
            fill_atomically(self.path(attachment_id, is_thumb), functools.partial(write_new, content))

    def move_in(self, attachment_id: str, source: Path) -> None:
        """A streamed upload's temporary file (in this directory: a rename) becomes the file."""
        os.replace(source, self.path(attachment_id))

    def delete(self, attachment_ids: Iterable[str]) -> None:
        for attachment_id in attachment_ids:
            for is_thumb in (False, True):
                try:
                    self.path(attachment_id, is_thumb).unlink()
                except FileNotFoundError:
                    pass
                except (OSError, ValueError):
                    log.warning("could not delete attachment file %s", attachment_id, exc_info=True)

    def stored_ids(self, older_than_s: float) -> list[str]:
        """Ids of the files on disk not modified for ``older_than_s`` (uploads in flight are
        written before their row exists, so young files are left alone)."""
        if not self.root.is_dir():
            return []
        cutoff = time.time() - older_than_s
        found = set()
        with os.scandir(self.root) as entries:
            for entry in entries:
                stem = entry.name.removesuffix(THUMBNAIL_SUFFIX)
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                        found.add(str(uuid.UUID(stem)))
                except (ValueError, OSError):
                    continue
        return sorted(found)

    def read_range(self, attachment_id: str, thumbnail: bool, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start``..``end`` (exclusive), in chunks. Blocking: iterate in an executor."""
        with open(self.path(attachment_id, thumbnail), "rb") as fh:
            fh.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = fh.read(min(READ_CHUNK, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk
