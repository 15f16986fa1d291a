"""Form bodies on the routes that take them (POST /story, POST /groups, PATCH /groups/{id},
PATCH /users/profile): malformed multipart is a 400 envelope, never a 500; url-encoded forms
are accepted wherever multipart is (the old backend's body parsers took both)."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from .support import assert_error

BOUNDARY = "XyZ123boundary"
MALFORMED = {
    "part without a name": (f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nhello\r\n"
                            f"--{BOUNDARY}--\r\n"),
    "part without headers": f"--{BOUNDARY}\r\n\r\nhello\r\n--{BOUNDARY}--\r\n",
    "control character in a name": (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="ca\x01p"\r\n'
                                    f"\r\nhello\r\n--{BOUNDARY}--\r\n"),
    "DEL in a name": (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="ca\x7fp"\r\n'
                      f"\r\nhello\r\n--{BOUNDARY}--\r\n"),
    "bare LF in a header": (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="caption"\nX: y\r\n'
                            f"\r\nhello\r\n--{BOUNDARY}--\r\n"),
    "no Content-Disposition": f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{BOUNDARY}--\r\n",
    "no closing boundary": f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="caption"\r\n\r\nhello',
    "garbage": "\x00\x01\x02 not a form at all",
    "headers not UTF-8": None,   # built below (bytes)
}


def malformed_bodies():
    for label, text in MALFORMED.items():
        if text is None:
            yield label, (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"".encode()
                          + b"\xff\xfe\"\r\n\r\nhello\r\n" + f"--{BOUNDARY}--\r\n".encode())
        else:
            yield label, text.encode("latin-1")


ROUTES = [("POST", "/api/story"), ("POST", "/api/groups"), ("PATCH", "/api/users/profile")]


@pytest.mark.gen_test(timeout=60)
async def test_malformed_multipart_is_a_400_envelope(api, user_factory):
    user = await user_factory()
    for method, path in ROUTES:
        for label, body in malformed_bodies():
            response = await api.request(method, path, token=user.access, body=body, headers={
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
            envelope = assert_error(response, 400)
            assert envelope["error"] == "Bad Request", (path, label)
        no_boundary = await api.request(method, path, token=user.access, body=b"x",
                                        headers={"Content-Type": "multipart/form-data"})
        assert_error(no_boundary, 400)
    # Nothing was created by any of them.
    assert (await api.get("/api/story", token=user.access)).data == []
    assert (await api.get("/api/groups/my-groups", token=user.access)).data == []


@pytest.mark.gen_test(timeout=60)
async def test_url_encoded_forms_are_accepted_wherever_multipart_is(api, user_factory):
    user = await user_factory()
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    profile = await api.patch("/api/users/profile", token=user.access, headers=form,
                              body=urlencode({"fullName": "Zoë Form", "bio": "a & b = c"}).encode())
    assert profile.status == 200, profile.body
    assert profile.data["fullName"] == "Zoë Form" and profile.data["bio"] == "a & b = c"

    group = await api.post("/api/groups", token=user.access, headers=form,
                           body=urlencode({"name": "Form group", "description": "made by a form"}).encode())
    assert group.status == 201, group.body
    assert group.data["name"] == "Form group" and group.data["description"] == "made by a form"
    renamed = await api.patch(f"/api/groups/{group.data['id']}", token=user.access, headers=form,
                              body=b"name=Renamed+group")
    assert renamed.status == 200 and renamed.data["name"] == "Renamed group"

    story = await api.post("/api/story", token=user.access, headers=form, body=b"caption=hello%20there")
    assert story.status == 201, story.body
    assert story.data["caption"] == "hello there"

    # Validation still applies, and broken encodings are 400s.
    assert_error(await api.post("/api/groups", token=user.access, headers=form, body=b"name=ab"), 400,
                 "Validation failed")
    assert_error(await api.post("/api/groups", token=user.access, headers=form, body=b"name=%ff%fe%fd"), 400)
    assert_error(await api.post("/api/groups", token=user.access, headers=form,
                                body="name=caf\u00e9".encode("latin-1")), 400)
    unknown = assert_error(await api.post("/api/groups", token=user.access, headers=form,
                                          body=b"name=Okay+name&role=owner"), 400, "Validation failed")
    assert unknown["errors"] == ["role: Unknown field."]
    # Routes that never took multipart keep taking JSON only.
    assert_error(await api.post("/api/auth/login", headers=form, body=b"email=a%40b.c&password=x"), 400)
