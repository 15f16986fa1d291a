"""Re-signing the attachment URLs of stored events (services.attachments.fresh_urls): only
URLs this server signed are renewed, wherever the attachments sit in the payload, and
nothing else in the payload changes."""
from __future__ import annotations

import copy
import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

from nexus_chat.services.attachments import fresh_urls, signature_valid, signed_url

CTX = SimpleNamespace(settings=SimpleNamespace(jwt_access_secret="s" * 40, chat_attachment_url_ttl_s=3600))
OTHER = SimpleNamespace(settings=SimpleNamespace(jwt_access_secret="t" * 40, chat_attachment_url_ttl_s=3600))
ID = "0b6f3c1e-8f43-4f57-9d0a-5a1f2b3c4d5e"


def expires_of(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["expires"][0])


def test_renews_signed_urls_anywhere_in_the_payload():
    old = int(time.time()) - 100
    attachment = {"id": ID, "url": signed_url(CTX, ID, "file", old),
                  "thumbnailUrl": signed_url(CTX, ID, "thumbnail", old), "name": "a.png"}
    payload = {"id": "m1", "content": "hi", "attachments": [attachment],
               "replyTo": {"id": "m0", "attachments": [dict(attachment)]}, "list": [{"attachments": [dict(attachment)]}]}
    out = fresh_urls(CTX, copy.deepcopy(payload))
    for item in (out["attachments"][0], out["replyTo"]["attachments"][0], out["list"][0]["attachments"][0]):
        for key, variant in (("url", "file"), ("thumbnailUrl", "thumbnail")):
            expires = expires_of(item[key])
            assert expires > time.time() + 3000
            assert signature_valid(CTX, ID, variant, expires, parse_qs(urlsplit(item[key]).query)["sig"][0])
        assert item["name"] == "a.png"
    assert out["content"] == "hi" and out["id"] == "m1"


def test_leaves_alone_what_this_server_did_not_sign():
    old = int(time.time()) - 100
    other_id = "9b6f3c1e-8f43-4f57-9d0a-5a1f2b3c4d5e"
    cases = [
        {"id": ID, "url": signed_url(OTHER, ID, "file", old)},                 # another key
        {"id": ID, "url": signed_url(CTX, other_id, "file", old)},             # another file's
        {"id": ID, "url": signed_url(CTX, ID, "thumbnail", old)},              # thumbnail sig as file
        {"id": ID, "url": f"/api/chat/attachments/{ID}?expires=1&sig={'0' * 64}"},
        {"id": ID, "url": f"/api/chat/attachments/{ID}?expires=x&sig=abc"},
        {"id": ID, "url": "http://[::1/api"},                                  # urlsplit refuses it
        {"id": ID, "url": 42},
        {"id": 7, "url": signed_url(CTX, ID, "file", old)},
    ]
    for case in cases:
        assert fresh_urls(CTX, {"attachments": [copy.deepcopy(case)]}) == {"attachments": [case]}
    for payload in (None, "text", 3, [], {"attachments": "x"}, {"attachments": [None, "x"]}):
        assert fresh_urls(CTX, copy.deepcopy(payload)) == payload
