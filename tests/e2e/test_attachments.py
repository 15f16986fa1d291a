"""Attachments (docs/api.md#attachments): uploads recognised by content, images cleaned of
metadata with thumbnails, private reads (bearer token or signed URL), ranges, quota, and the
sweeper's clean-up."""
from __future__ import annotations

import datetime as dt
import uuid
import io
import os
import time
import zipfile
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import struct
from PIL import Image

from nexus_chat.services import attachments as attachment_service
from nexus_chat.sweeper import sweep_once

from .chat_support import make_group
from .support import assert_error

GPS_MARKER = b"GPSLatitudeSecret"


def jpeg_with_gps(size=(640, 480)) -> bytes:
    """A camera-like JPEG: EXIF with a GPS block, a maker note and a comment."""
    img = Image.new("RGB", size, (20, 140, 220))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"                         # Make
    exif[0x0112] = 6                                    # Orientation: rotate 90° to view
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 31.0, 12.0)            # latitude
    gps[3], gps[4] = "E", (13.0, 24.0, 36.0)
    exif[0x9286] = GPS_MARKER.decode()                  # UserComment (a findable marker)
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes(), comment=b"secret comment")
    return out.getvalue()


def image(fmt: str, size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(out, fmt)
    return out.getvalue()


def docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<document/>")
    return out.getvalue()


async def upload(api, user, data: bytes, name: str = "file.bin", content_type="application/octet-stream"):
    return await api.post("/api/chat/attachments", files={"file": (name, data, content_type)},
                          token=user.access)


async def uploaded(api, user, data: bytes, name: str = "file.bin") -> dict:
    response = await upload(api, user, data, name)
    assert response.status == 201, response.body
    return response.data


@pytest.mark.gen_test(timeout=60)
async def test_a_phone_photo_loses_its_metadata_and_gets_a_thumbnail(api, user_factory):
    me = await user_factory("photo")
    original = jpeg_with_gps()
    assert GPS_MARKER in original
    shaped = await uploaded(api, me, original, "IMG_0001.jpg")
    assert shaped["kind"] == "image" and shaped["mimeType"] == "image/jpeg"
    assert (shaped["width"], shaped["height"]) == (480, 640)       # upright, as the camera meant
    assert shaped["name"] == "IMG_0001.jpg"
    assert urlsplit(shaped["url"]).path == f"/api/chat/attachments/{shaped['id']}"

    stored = await api.get(urlsplit(shaped["url"]).path, token=me.access)
    assert stored.status == 200
    assert stored.headers["Content-Type"] == "image/jpeg"
    assert len(stored.body) == shaped["size"]
    assert GPS_MARKER not in stored.body and b"PhoneMaker" not in stored.body
    assert b"secret comment" not in stored.body
    with Image.open(io.BytesIO(stored.body)) as img:
        assert img.size == (480, 640)
        assert not img.getexif()

    thumb = await api.get(urlsplit(shaped["thumbnailUrl"]).path, token=me.access)
    assert thumb.status == 200 and thumb.headers["Content-Type"] == "image/webp"
    with Image.open(io.BytesIO(thumb.body)) as img:
        assert img.format == "WEBP" and max(img.size) == 320 and img.size == (240, 320)


@pytest.mark.gen_test(timeout=60)
async def test_types_are_decided_by_content(api, user_factory):
    me = await user_factory("types")
    for fmt, mime in (("PNG", "image/png"), ("WEBP", "image/webp"), ("GIF", "image/gif")):
        shaped = await uploaded(api, me, image(fmt), "picture.dat")
        assert (shaped["kind"], shaped["mimeType"]) == ("image", mime), fmt
    cases = [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "report.pdf", "file", "application/pdf"),
        ("Grüße aus Köln\nline two\n".encode(), "notes.txt", "file", "text/plain; charset=utf-8"),
        (docx(), "cv.docx", "file",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64, "clip.mp4", "video", "video/mp4"),
    ]
    for data, name, kind, mime in cases:
        shaped = await uploaded(api, me, data, name)
        assert (shaped["kind"], shaped["mimeType"], shaped["name"]) == (kind, mime, name)
        assert "thumbnailUrl" not in shaped and "width" not in shaped
    # by content, not by name: an executable called .pdf, random bytes, an HTML page called .png
    for data, name in ((b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "invoice.pdf"),
                       (bytes(range(256)) * 4, "data.bin")):
        assert_error(await upload(api, me, data, name), 415)
    page = await uploaded(api, me, b"<html><script>alert(1)</script></html>", "x.png")
    assert page["kind"] == "file" and page["mimeType"] == "text/plain; charset=utf-8"
    served = await api.get(f"/api/chat/attachments/{page['id']}", token=me.access)
    assert served.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert served.headers["Content-Disposition"].startswith("attachment;")
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Security-Policy"].startswith("sandbox")


@pytest.mark.gen_test(timeout=60)
async def test_bad_uploads_are_clear_4xx(api, user_factory, runtime):
    me = await user_factory("bad")
    assert_error(await upload(api, me, b""), 400)
    assert_error(await api.post("/api/chat/attachments", files={"other": ("a", b"x", "text/plain")},
                                token=me.access), 400)
    assert_error(await api.post("/api/chat/attachments", json={}, token=me.access), 400)
    assert_error(await upload(api, me, image("PNG")[:60], "cut.png"), 400)       # truncated image
    big = image("PNG", (9000, 20))                                               # wider than 8192
    response = await upload(api, me, big, "wide.png")
    assert_error(response, 400)
    assert "8192" in response.json["errors"][0]
    assert_error(await api.post("/api/chat/attachments", files={"file": ("a.txt", b"hi", "text/plain")}), 401)
    # a hostile name is for display only: no directories, no control characters
    shaped = await uploaded(api, me, b"plain text", "..\\..\\etc/pass\u202ewd\t.txt")
    assert shaped["name"] == "passwd.txt"
    store = attachment_service.store_of(runtime.ctx)
    assert sorted(p.name for p in store.root.iterdir()) == [shaped["id"]]   # nothing else was kept


@pytest.mark.gen_test(timeout=60)
async def test_only_the_uploader_reads_an_unsent_upload_and_signed_urls_expire(api, user_factory, runtime):
    me, other = await user_factory("owner"), await user_factory("other")
    shaped = await uploaded(api, me, image("PNG", (400, 100)), "wide.png")
    path = f"/api/chat/attachments/{shaped['id']}"
    assert (await api.get(path, token=me.access)).status == 200
    assert_error(await api.get(path, token=other.access), 404)
    assert_error(await api.get(path + "/thumbnail", token=other.access), 404)
    assert_error(await api.get(path), 401)
    assert_error(await api.get("/api/chat/attachments/not-a-uuid", token=me.access), 404)
    assert_error(await api.get("/api/chat/attachments/8a7d1c8e-3c49-4d4e-9a11-3f6f7e0c1d2b",
                               token=me.access), 404)

    # the signed URL works without any token, for exactly this file and variant
    signed = urlsplit(shaped["url"])
    assert (await api.get(signed.path + "?" + signed.query)).status == 200
    thumb = urlsplit(shaped["thumbnailUrl"])
    assert (await api.get(thumb.path + "?" + thumb.query)).status == 200
    assert_error(await api.get(thumb.path + "?" + signed.query), 403)            # file sig on thumb
    query = parse_qs(signed.query)
    tampered = f"?expires={int(query['expires'][0]) + 60}&sig={query['sig'][0]}"
    assert_error(await api.get(signed.path + tampered), 403)
    assert_error(await api.get(signed.path + f"?expires={query['expires'][0]}&sig={'0' * 64}"), 403)
    assert_error(await api.get(signed.path + f"?sig={query['sig'][0]}"), 403)
    # a signature with non-ASCII characters is a wrong one, not a 500 (found by schemathesis)
    non_ascii = quote("é" + query["sig"][0][1:])
    assert_error(await api.get(signed.path + f"?expires={query['expires'][0]}&sig={non_ascii}"), 403)
    past = int(time.time()) - 1
    expired = attachment_service.signed_url(runtime.ctx, shaped["id"], "file", past)
    assert_error(await api.get(expired), 403)


def gif_animation(side: int, frames: int) -> bytes:
    """A side×side animated GIF whose frames are 1×1 rectangles: a few bytes a frame, yet a
    decoder composes a whole canvas for each."""
    out = bytearray(b"GIF89a" + struct.pack("<HH", side, side) + bytes([0xF0, 0, 0]))
    out += bytes([0, 0, 0, 255, 255, 255])                       # two-colour palette
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"        # loop forever
    for i in range(frames):
        out += b"\x21\xf9\x04\x04\x02\x00\x00\x00"               # keep the canvas, 20 ms
        out += b"\x2c" + struct.pack("<HHHH", i % side, 0, 1, 1) + b"\x00"
        out += bytes([2, 2, 0x44 if i % 2 else 0x4C, 0x01, 0])    # one pixel, LZW
    return bytes(out + b"\x3b")


@pytest.mark.gen_test(timeout=120)
async def test_an_animation_too_large_to_decode_is_refused(api, user_factory):
    me = await user_factory("gifbomb")
    bomb = gif_animation(2000, 7)           # 340 bytes; 7 canvases of 4 Mpx decoded
    assert len(bomb) < 400
    response = await upload(api, me, bomb, "bomb.gif")
    assert_error(response, 400)
    assert "animation is too large" in response.json["errors"][0]
    response = await upload(api, me, gif_animation(16, 1001), "long.gif")
    assert_error(response, 400)
    assert "at most 1000 frames" in response.json["errors"][0]
    # an ordinary animation is kept, frames and all
    shaped = await uploaded(api, me, gif_animation(200, 40), "ok.gif")
    assert shaped["mimeType"] == "image/gif" and (shaped["width"], shaped["height"]) == (200, 200)
    stored = await api.get(f"/api/chat/attachments/{shaped['id']}", token=me.access)
    with Image.open(io.BytesIO(stored.body)) as img:
        assert img.n_frames > 1


@pytest.mark.gen_test(timeout=60)
async def test_ranges_for_video_players(api, user_factory):
    me = await user_factory("range")
    data = b"%PDF-1.4\n" + bytes(range(48, 58)) * 100
    shaped = await uploaded(api, me, data, "doc.pdf")
    path = f"/api/chat/attachments/{shaped['id']}"
    whole = await api.get(path, token=me.access)
    assert whole.status == 200 and whole.body == data and whole.headers["Accept-Ranges"] == "bytes"
    part = await api.get(path, token=me.access, headers={"Range": "bytes=10-19"})
    assert part.status == 206 and part.body == data[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    tail = await api.get(path, token=me.access, headers={"Range": "bytes=-5"})
    assert tail.status == 206 and tail.body == data[-5:]
    rest = await api.get(path, token=me.access, headers={"Range": f"bytes={len(data) - 3}-"})
    assert rest.body == data[-3:]
    assert_error(await api.get(path, token=me.access, headers={"Range": f"bytes={len(data)}-"}), 416)
    # absurd positions (past Python's 4300-digit int limit too) are ranges past the end
    huge = "9" * 5000
    assert_error(await api.get(path, token=me.access, headers={"Range": f"bytes={huge}-"}), 416)
    assert (await api.get(path, token=me.access, headers={"Range": f"bytes=-{huge}"})).body == data
    everything = await api.get(path, token=me.access, headers={"Range": f"bytes=0-{huge}"})
    assert everything.status == 206 and everything.body == data
    padded = await api.get(path, token=me.access, headers={"Range": "bytes=" + "0" * 40 + "10-19"})
    assert padded.status == 206 and padded.body == data[10:20]


@pytest.mark.parametrize("setting_overrides", [{"chat_user_quota_bytes": 3000,
                                                "chat_attachment_max_bytes": 2048}])
@pytest.mark.gen_test(timeout=60)
async def test_size_limit_and_quota(api, user_factory, runtime):
    me, other = await user_factory("quota"), await user_factory("q2")
    response = await upload(api, me, b"a" * 2049, "big.txt")
    assert_error(response, 413)
    await uploaded(api, me, b"a" * 2000, "one.txt")
    response = await upload(api, me, b"b" * 1500, "two.txt")
    assert_error(response, 413)
    assert "quota" in response.json["message"].lower()
    await uploaded(api, other, b"c" * 1500, "mine.txt")      # quotas are per user
    store = attachment_service.store_of(runtime.ctx)
    assert len(list(store.root.iterdir())) == 2              # the refused file was not kept


@pytest.mark.gen_test(timeout=60)
async def test_sweeper_removes_unattached_uploads_and_stray_files(api, user_factory, runtime):
    me = await user_factory("sweep")
    stale = await uploaded(api, me, image("PNG"), "stale.png")
    fresh = await uploaded(api, me, b"fresh text", "fresh.txt")
    gone = await uploaded(api, me, b"row deleted", "gone.txt")
    ttl = runtime.settings.chat_attachment_orphan_ttl_s
    await runtime.db.execute("UPDATE attachments SET created_at = %s WHERE id = %s",
                             (dt.datetime.utcnow() - dt.timedelta(seconds=ttl + 5), stale["id"]))
    await runtime.db.execute("DELETE FROM attachments WHERE id = %s", (gone["id"],))
    store = attachment_service.store_of(runtime.ctx)
    old = time.time() - attachment_service.STRAY_MIN_AGE_S - 10
    os.utime(store.path(gone["id"]), (old, old))
    # temporary files of streamed uploads: one a crash left long ago, one of an upload in flight
    crashed, streaming = store.root / ".upload-0123abcd.part", store.root / ".upload-4567ef01.part"
    crashed.write_bytes(b"half an upload")
    streaming.write_bytes(b"arriving")
    os.utime(crashed, (old, old))

    removed = await sweep_once(runtime.ctx)
    assert removed["unattachedUploads"] == 1 and removed["strayFiles"] == 2
    assert not crashed.exists() and streaming.exists()
    streaming.unlink()
    assert not store.path(stale["id"]).exists() and not store.path(stale["id"], True).exists()
    assert not store.path(gone["id"]).exists()
    assert store.path(fresh["id"]).exists()
    assert await runtime.db.fetch_one("SELECT id FROM attachments WHERE id = %s", (stale["id"],)) is None
    assert (await api.get(f"/api/chat/attachments/{fresh['id']}", token=me.access)).status == 200


@pytest.mark.gen_test(timeout=60)
async def test_deleting_an_account_deletes_the_files_it_uploaded(api, user_factory, runtime):
    victim, friend = await user_factory("gone"), await user_factory("stays")
    photo = await uploaded(api, victim, image("PNG"), "me.png")
    note = await uploaded(api, victim, b"a note", "note.txt")
    theirs = await uploaded(api, friend, b"their note", "theirs.txt")
    store = attachment_service.store_of(runtime.ctx)
    assert store.path(photo["id"], True).exists()
    response = await api.delete("/api/auth/delete-account", json={"password": victim.password},
                                token=victim.access)
    assert response.status == 200, response.body
    for attachment in (photo, note):
        assert not store.path(attachment["id"]).exists()
        assert await runtime.db.fetch_one("SELECT id FROM attachments WHERE id = %s",
                                          (attachment["id"],)) is None
    assert not store.path(photo["id"], True).exists()
    assert store.path(theirs["id"]).exists()
    assert (await api.get(f"/api/chat/attachments/{theirs['id']}", token=friend.access)).status == 200


# ---- attachments in messages -------------------------------------------------------------


async def fetch(api, attachment, user=None, thumbnail=False):
    key = "thumbnailUrl" if thumbnail else "url"
    if user is None:
        return await api.get(attachment[key])                       # the signed URL, no token
    return await api.get(urlsplit(attachment[key]).path, token=user.access)


@pytest.mark.gen_test(timeout=90)
async def test_a_message_carries_attachments_only_its_audience_can_read(api, user_factory, chat):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    ca, cb = await chat(a, ["websocket"]), await chat(b, ["websocket"])
    photo = await uploaded(api, a, image("PNG", (600, 300)), "holiday.png")
    doc = await uploaded(api, a, b"%PDF-1.4\nplan", "plan.pdf")

    sent = await ca.call("sendMessage", {"recipientId": b.id, "attachmentIds": [doc["id"], photo["id"]]})
    assert sent["content"] == "" and [x["id"] for x in sent["attachments"]] == [doc["id"], photo["id"]]
    assert sent["attachments"][1]["width"] == 600 and sent["attachments"][1]["thumbnailUrl"]
    [received] = await cb.wait_for("message")
    assert [x["id"] for x in received["attachments"]] == [doc["id"], photo["id"]]
    # the recipient reads it with a token or through the signed URLs; others never
    assert (await fetch(api, received["attachments"][0], b)).body == b"%PDF-1.4\nplan"
    assert (await fetch(api, received["attachments"][1], thumbnail=True)).status == 200
    assert_error(await fetch(api, received["attachments"][0], c), 404)
    page = (await api.get("/api/chat/messages", params={"recipientId": a.id}, token=b.access)).data
    assert [x["name"] for x in page[0]["attachments"]] == ["plan.pdf", "holiday.png"]
    recents = (await api.get("/api/chat/recent-messages", token=b.access)).data
    assert [x["id"] for x in recents[0]["lastMessage"]["attachments"]] == [doc["id"], photo["id"]]

    # an upload goes out once, only by its uploader, at most 10 to a message
    for ids, why in (([doc["id"]], "attachmentIds"), ([str(uuid.uuid4())], "attachmentIds")):
        error = await ca.call("sendMessage", {"recipientId": b.id, "content": "again", "attachmentIds": ids})
        assert error["statusCode"] == 400 and error["errors"][0].startswith(why), error
    theirs = await uploaded(api, c, b"c's note", "c.txt")
    error = await ca.call("sendMessage", {"recipientId": b.id, "content": "x", "attachmentIds": [theirs["id"]]})
    assert error["statusCode"] == 400
    mine = await uploaded(api, a, b"twice", "t.txt")
    error = await ca.call("sendMessage", {"recipientId": b.id, "attachmentIds": [mine["id"], mine["id"]]})
    assert error["statusCode"] == 400
    error = await ca.call("sendMessage", {"recipientId": b.id, "attachmentIds": [mine["id"]] * 11})
    assert error["statusCode"] == 400 and error["errors"][0].startswith("attachmentIds")
    error = await ca.call("sendMessage", {"recipientId": b.id, "content": "  "})
    assert error["statusCode"] == 400 and error["errors"][0].startswith("content")
    # a refused message claimed nothing: the upload can still be sent
    ok = await ca.call("sendMessage", {"recipientId": b.id, "content": "now", "attachmentIds": [mine["id"]]})
    assert [x["id"] for x in ok["attachments"]] == [mine["id"]]
    history = (await api.get("/api/chat/messages", params={"recipientId": b.id}, token=a.access)).data
    assert [m["content"] for m in history] == ["now", ""]      # no half-stored message


@pytest.mark.gen_test(timeout=90)
async def test_group_attachments_follow_membership_and_deletion(api, user_factory, chat, runtime):
    owner, member = await user_factory("own"), await user_factory("mem")
    group_id = await make_group(api, owner, [member])
    co = await chat(owner, ["websocket"])
    upload_ = await uploaded(api, owner, image("JPEG", (100, 100)), "team.jpg")
    sent = await co.call("sendMessage", {"groupId": group_id, "content": "team photo",
                                         "attachmentIds": [upload_["id"]]})
    attachment = sent["attachments"][0]
    assert (await fetch(api, attachment, member)).status == 200
    kicked = await api.delete(f"/api/groups/{group_id}/members/{member.id}", token=owner.access)
    assert kicked.status == 200, kicked.body
    assert_error(await fetch(api, attachment, member), 404)       # a former member reads nothing
    # deleting the message deletes the attachment, file and thumbnail
    store = attachment_service.store_of(runtime.ctx)
    assert store.path(attachment["id"]).exists()
    deleted = await co.call("deleteMessage", {"messageId": sent["id"]})
    assert deleted.get("deletedAt"), deleted
    assert not store.path(attachment["id"]).exists() and not store.path(attachment["id"], True).exists()
    assert_error(await fetch(api, attachment, owner), 404)
    assert_error(await fetch(api, attachment), 404)                 # the signed URL too
    page = (await api.get("/api/chat/messages", params={"groupId": group_id}, token=owner.access)).data
    assert page[0]["attachments"] == []
