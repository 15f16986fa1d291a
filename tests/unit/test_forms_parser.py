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


def _streamed(content_type: str, body: bytes, piece: int) -> forms.Form:
    """``body`` fed to MultipartParser ``piece`` bytes at a time, into in-memory sinks."""
    form = forms.Form()
    files: dict[str, list[bytes]] = {}

    class FileSink(forms.PartSink):
        def __init__(self, part):
            self.part, self.chunks = part, []

        def write(self, data):
            self.chunks.append(data)

        def close(self):
            files.setdefault(self.part.name, self.chunks)

    def on_part(part):
        return forms.TextSink(form, part.name) if part.filename is None else FileSink(part)

    parser = forms.MultipartParser(content_type, on_part)
    for start in range(0, len(body), piece):
        parser.feed(body[start:start + piece])
    parser.end()
    form.files = {name: b"".join(chunks) for name, chunks in files.items()}
    return form


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 17, 64, 1000, 1 << 20])
def test_a_form_fed_in_pieces_of_any_size_parses_the_same(piece):
    """Boundaries, CRLFs and header blocks cut anywhere between two feeds."""
    content = b"\r\n--" + BOUNDARY.encode()[:-1] + b"\r\n" + bytes(range(256)) * 8 + b"\r\n-"
    body = (f"\r\n--{BOUNDARY}  \r\n"
            'Content-Disposition: form-data; name="caption"\r\n\r\n'
            "h\u00e9llo\r\n"
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="file"; filename="x.bin"\r\n\r\n').encode() \
        + content + f"\r\n--{BOUNDARY}--\r\nepilogue".encode()
    form = _streamed(f"multipart/form-data; boundary={BOUNDARY}", body, piece)
    assert form.fields == {"caption": "h\u00e9llo"}
    assert form.files == {"file": content}
    whole = forms.parse_form(f"multipart/form-data; boundary={BOUNDARY}", body)
    assert whole.fields == form.fields and whole.files["file"].body == content


@pytest.mark.parametrize("piece", [1, 5, 4096])
def test_malformed_forms_are_refused_whatever_the_pieces(piece):
    for body in (f"--{BOUNDARY}\r\n\r\nx\r\n--{BOUNDARY}--\r\n",              # no headers
                 f"xx--{BOUNDARY}\r\n",                                        # no leading boundary
                 f"--{BOUNDARY}junk\r\n",                                      # junk after it
                 f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\n\r\nx',   # not closed
                 f"--{BOUNDARY}\r\n" + "X-Long: " + "a" * 20000):             # endless headers
        with pytest.raises(forms.MalformedForm):
            _streamed(f"multipart/form-data; boundary={BOUNDARY}", body.encode(), piece)
