"""The form parser (nexus_chat/forms.py) on what browsers send and on what they never do."""
from __future__ import annotations

import pytest

from nexus_chat import forms

BOUNDARY = "XyZ123boundary"


def test_parser_keeps_what_browsers_send():
    body = (f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="caption"\r\n\r\n'
            "two\r\nlines\r\n"
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="image"; filename="a;b \\"c\\".png"\r\n'
            "Content-Type: image/png\r\n\r\n"
            "\x89PNG\r\n--not-the-boundary\r\n"
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="video"; filename=""\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
            f"\r\n--{BOUNDARY}--\r\n").encode("latin-1")
    form = forms.parse_form(f'multipart/form-data; boundary="{BOUNDARY}"', body)
    assert form.fields == {"caption": "two\r\nlines"}
    assert list(form.files) == ["image"]          # an empty file input is no file
    image = form.files["image"]
    assert image.body == b"\x89PNG\r\n--not-the-boundary"
    assert image.content_type == "image/png" and image.filename == 'a;b \\"c\\".png'
    assert forms.parse_form(f"multipart/form-data; boundary={BOUNDARY}", f"--{BOUNDARY}--\r\n".encode()).fields == {}


def test_unquoted_names_and_empty_files():
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=caption\r\n\r\nhi\r\n"
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name=image; filename=""\r\n\r\n'
            f"\r\n--{BOUNDARY}--\r\n").encode()
    form = forms.parse_form(f"multipart/form-data; boundary={BOUNDARY}", body)
    assert form.fields == {"caption": "hi"} and form.files == {}


@pytest.mark.parametrize("body", [
    f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{BOUNDARY}--\r\n",
    f"--{BOUNDARY}\r\n\r\nx\r\n--{BOUNDARY}--\r\n",
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a\x00b"\r\n\r\nx\r\n--{BOUNDARY}--\r\n',
    f'--{BOUNDARY}\r\nContent-Disposition: attachment; name="a"\r\n\r\nx\r\n--{BOUNDARY}--\r\n',
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\n\r\nx',
    "".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nx\r\n' for i in range(40))
    + f"--{BOUNDARY}--\r\n",
])
def test_malformed_multipart_is_refused(body):
    with pytest.raises(forms.MalformedForm):
        forms.parse_form(f"multipart/form-data; boundary={BOUNDARY}", body.encode("latin-1"))


def test_url_encoded():
    assert forms.parse_form("application/x-www-form-urlencoded; charset=UTF-8",
                            b"name=Zo%C3%AB&bio=&x=a+b") == forms.Form(fields={"name": "Zoë", "bio": "", "x": "a b"})
    for bad in (b"name=%ff", "name=é".encode("latin-1"), b"&".join([b"a=1"] * 40), b"a%01b=1"):
        with pytest.raises(forms.MalformedForm):
            forms.parse_form("application/x-www-form-urlencoded", bad)
