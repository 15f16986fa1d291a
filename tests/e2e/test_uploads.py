"""Uploads and static files (docs/api.md#uploads-and-static-files): the bytes decide the type,
sizes are enforced while the body streams in, files never outlive their rows, and nothing
outside public/ is served."""
from __future__ import annotations

import asyncio
import io
import os
import uuid

import pytest
from PIL import Image

from nexus_chat import uploads

from .support import assert_error

MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64
MOV = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  " + b"\x00" * 64
MKV = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + b"\x00" * 64


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (8, 8)) -> bytes:
    """A small real image made in memory."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(buffer, format=fmt)
    return buffer.getvalue()


def stored_files(public_dir, folder: str) -> list:
    directory = public_dir / "uploads" / folder
    return sorted(directory.iterdir()) if directory.exists() else []


# ---- content checks (pure functions) ------------------------------------------------------
def test_images_are_recognised_by_content():
    assert uploads.image_extension(image_bytes("PNG")) == "png"
    assert uploads.image_extension(image_bytes("JPEG")) == "jpg"
    assert uploads.image_extension(image_bytes("WEBP")) == "webp"
    assert uploads.image_extension(image_bytes("GIF")) is None      # not an accepted format
    assert uploads.image_extension(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None
    assert uploads.image_extension(b"MZ\x90\x00 not an image") is None
    assert uploads.image_extension(image_bytes("PNG")[:40]) is None  # truncated


def test_decompression_bombs_are_refused():
    bomb = image_bytes("PNG", (1, 1))
    # A tiny file that claims enormous dimensions: rewrite the IHDR width/height.
    import struct
    import zlib
    # 10 000²: past Pillow's limit, where it only warns; 100 000²: past twice it, where it raises.
    for side in (10_000, 100_000):
        ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
        chunk = b"IHDR" + ihdr
        claimed = bomb[:8] + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk)) + bomb[33:]
        assert uploads.image_extension(claimed) is None, side


def test_videos_are_recognised_by_container_header():
    assert uploads.video_extension(MP4) == "mp4"
    assert uploads.video_extension(MOV) == "mov"
    assert uploads.video_extension(MKV) == "mkv"
    assert uploads.video_extension(b"RIFF\x00\x00\x00\x00AVI LIST") is None
    assert uploads.video_extension(image_bytes()) is None


def test_only_our_own_upload_urls_map_to_files(tmp_path):
    storage = uploads.Storage(tmp_path)
    good = f"/uploads/avatars/{uuid.uuid4()}.png"
    assert storage.path_of(good) == tmp_path / "uploads" / good.removeprefix("/uploads/")
    for bad in ("/uploads/../secrets.json", "/uploads/avatars/../../x.png", "/etc/passwd",
                f"/uploads/other/{uuid.uuid4()}.png", "/uploads/avatars/name.png", "", None,
                f"/uploads/avatars/{uuid.uuid4()}.sh"):
        assert storage.path_of(bad) is None


# ---- through the API ------------------------------------------------------------------------
@pytest.mark.gen_test
async def test_a_non_image_renamed_png_is_refused(api, user_factory, runtime):
    me = await user_factory("fake")
    response = await api.patch("/api/users/profile", token=me.access,
                               files={"avatar": ("cat.png", b"#!/bin/sh\necho pwned\n", "image/png")})
    body = assert_error(response, 400, "Validation failed")
    assert body["errors"] == ["avatar: Must be a JPEG, PNG or WEBP image."]
    assert stored_files(runtime.ctx.public_dir, "avatars") == []


@pytest.mark.gen_test
async def test_unknown_file_fields_are_refused(api, user_factory):
    me = await user_factory("unk")
    response = await api.patch("/api/users/profile", token=me.access,
                               files={"document": ("a.png", image_bytes(), "image/png")})
    assert_error(response, 400, "Validation failed")


@pytest.mark.gen_test
async def test_avatar_over_2mb_is_413_in_the_envelope(api, user_factory, runtime):
    me = await user_factory("big")
    big = image_bytes("PNG") + os.urandom(2 * 1024 * 1024)
    response = await api.patch("/api/users/profile", token=me.access,
                               files={"avatar": ("big.png", big, "image/png")})
    assert_error(response, 413)
    assert stored_files(runtime.ctx.public_dir, "avatars") == []


@pytest.mark.gen_test
async def test_a_30mb_body_is_refused_before_it_is_sent(runtime, user_factory):
    """The server answers from the headers alone: the body is never buffered."""
    me = await user_factory("huge")
    reader, writer = await asyncio.open_connection("127.0.0.1", runtime.port)
    writer.write((f"PATCH /api/users/profile HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Authorization: Bearer {me.access}\r\n"
                  f"Content-Type: multipart/form-data; boundary=xyz\r\n"
                  f"Content-Length: {30 * 1024 * 1024}\r\n\r\n").encode())
    writer.write(b"--xyz\r\n")   # a first few bytes, then nothing more
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 413"), head
    length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length")][0])
    body = await asyncio.wait_for(reader.readexactly(length), 5)
    writer.close()
    assert b'"statusCode":413' in body and b'"success":false' in body


@pytest.mark.gen_test
async def test_story_video_and_image_limits(api, user_factory, runtime):
    me = await user_factory("vid")
    response = await api.post("/api/story", token=me.access, files={"video": ("clip.mp4", MP4, "video/mp4")})
    assert response.status == 201, response.body
    assert response.data["videoUrl"].endswith(".mp4") and response.data["imageUrl"] is None
    response = await api.post("/api/story", token=me.access, files={"video": ("clip.mkv", MKV, "video/x-matroska")})
    assert response.data["videoUrl"].endswith(".mkv")
    response = await api.post("/api/story", token=me.access,
                              files={"video": ("clip.mp4", image_bytes(), "video/mp4")})
    assert_error(response, 400, "Validation failed")
    response = await api.post("/api/story", token=me.access,
                              files={"image": ("x.jpg", MP4, "image/jpeg")})
    assert_error(response, 400, "Validation failed")
    response = await api.post("/api/story", token=me.access, files={"video": ("big.mp4", MP4 + bytes(20 * 1024 * 1024), "video/mp4")})
    assert_error(response, 413)
    assert len(stored_files(runtime.ctx.public_dir, "stories")) == 2


@pytest.mark.gen_test
async def test_static_files_have_types_and_nosniff(api, user_factory, runtime):
    me = await user_factory("stat")
    story = await api.post("/api/story", token=me.access, form={"caption": "hi"},
                           files={"image": ("a.webp", image_bytes("WEBP"), "image/webp")})
    url = story.data["imageUrl"]
    response = await api.get(f"/api/public{url}")
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/webp"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.body == (runtime.ctx.public_dir / url.lstrip("/")).read_bytes()


@pytest.mark.gen_test
async def test_nothing_outside_public_is_served(api, runtime, tmp_path):
    public = runtime.ctx.public_dir
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (public / "uploads" / "link.txt").symlink_to(secret)
    (public / "uploads" / ".hidden").write_text("hidden")
    (public / "ok.txt").write_text("fine")
    assert (await api.get("/api/public/ok.txt")).body == b"fine"
    for path in ("/api/public/../secret.txt", "/api/public/%2e%2e/secret.txt",
                 "/api/public/uploads/%2e%2e/%2e%2e/secret.txt", "/api/public/..%2fsecret.txt",
                 "/api/public/uploads/..%2f..%2fsecret.txt", "/api/public/%2fetc%2fpasswd",
                 "/api/public//etc/passwd", "/api/public/uploads/link.txt", "/api/public/uploads/.hidden",
                 "/api/public/uploads/", "/api/public/", "/api/public/missing.png",
                 f"/api/public/{secret}"):
        response = await api.get(path)
        assert response.status == 404, (path, response.status, response.body)
        assert b"top secret" not in response.body
        if response.body:   # some of these never reach us (the client normalises ..)
            assert_error(response, 404)
            assert response.headers["X-Content-Type-Options"] == "nosniff"


# ---- pixel bombs: a small file that decodes to hundreds of megabytes ---------------------------
def png_of_size(width: int, height: int) -> bytes:
    """A real PNG, black and white: a 9000x9000 one is ~10 KB of file and 81 M pixels."""
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def pixel_bomb() -> bytes:
    return png_of_size(9000, 9000)


@pytest.mark.gen_test(timeout=60)
async def test_a_9000_pixel_square_png_is_refused_as_avatar_icon_and_story(api, user_factory, runtime, pixel_bomb):
    assert len(pixel_bomb) < 300_000
    me = await user_factory("bomb")
    answers = {
        "avatar": await api.patch("/api/users/profile", token=me.access,
                                  files={"avatar": ("bomb.png", pixel_bomb, "image/png")}),
        "icon": await api.post("/api/groups", token=me.access, form={"name": "bombed"},
                               files={"icon": ("bomb.png", pixel_bomb, "image/png")}),
        "image": await api.post("/api/story", token=me.access,
                                files={"image": ("bomb.png", pixel_bomb, "image/png")}),
    }
    limits = {"avatar": 4096, "icon": 4096, "image": 8192}
    for field, response in answers.items():
        body = assert_error(response, 400, "Validation failed")
        assert body["errors"] == [f"{field}: The image is 9000x9000 pixels; at most "
                                  f"{limits[field]}x{limits[field]} is accepted."]
    public = runtime.settings.server_public_dir
    from pathlib import Path
    for folder in ("avatars", "icons", "stories"):
        assert stored_files(Path(public), folder) == [], "nothing was stored"
    groups = await api.get("/api/groups/my-groups", token=me.access)
    assert groups.status == 200 and groups.data == [], "the group was not created either"


@pytest.mark.gen_test(timeout=60)
async def test_the_pixel_caps_are_per_side_and_stories_allow_more(api, user_factory):
    me = await user_factory("sides")
    wide_ok = await api.patch("/api/users/profile", token=me.access,
                              files={"avatar": ("w.png", png_of_size(4096, 8), "image/png")})
    assert wide_ok.status == 200, wide_ok.body
    too_tall = await api.patch("/api/users/profile", token=me.access,
                               files={"avatar": ("t.png", png_of_size(8, 4097), "image/png")})
    assert_error(too_tall, 400, "Validation failed")
    story = await api.post("/api/story", token=me.access,
                           files={"image": ("s.png", png_of_size(8192, 8), "image/png")})
    assert story.status == 201, story.body


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("setting_overrides", [{"uploads_image_max_px": 64}])
async def test_the_avatar_pixel_cap_is_configurable(api, user_factory):
    me = await user_factory("cfg")
    response = await api.patch("/api/users/profile", token=me.access,
                               files={"avatar": ("m.png", png_of_size(65, 65), "image/png")})
    body = assert_error(response, 400)
    assert body["errors"] == ["avatar: The image is 65x65 pixels; at most 64x64 is accepted."]
