"""nexus_chat/realtime/notepack.py against notepack.io itself (run by Node): what Node's
@socket.io/redis-adapter writes we read, and what we write it reads, JS Dates and undefined
included; plus notepack 2's extension forms, which notepack 3 still reads."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from nexus_chat.realtime import notepack
from nexus_chat.realtime.notepack import UNDEFINED, JSDate

JS_DIR = Path(__file__).resolve().parent.parent / "js"
AT_MS = 1796040000250    # 2026-11-30T12:00:00.250Z


def node(*args: str) -> str:
    binary = shutil.which("node")
    if binary is None or not (JS_DIR / "node_modules" / "notepack.io").is_dir():
        pytest.skip("node and tests/js/node_modules (npm ci) are needed")
    done = subprocess.run([binary, "notepack_roundtrip.js", *args], cwd=JS_DIR, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_we_read_what_notepack_writes():
    decoded = notepack.decode(bytes.fromhex(node("encode")))
    assert decoded == ["uid1", {"type": 2, "nsp": "/chat", "data": [
        "ev", {"at": JSDate(AT_MS), "n": 1.5, "big": 2 ** 40, "text": "héllo"}, [None, None]]},
        {"rooms": ["group:1"], "except": [], "flags": {}}]
    # and hand clients what a Node server would: JSON.stringify's view of it
    assert notepack.for_json(decoded[1]["data"][1])["at"] == "2026-11-30T12:00:00.250Z"


def test_notepack_reads_what_we_write():
    value = ["uid2", {"type": 2, "nsp": "/chat", "data": [
        "ev", {"at": JSDate(AT_MS), "gone": UNDEFINED, "n": 1.5, "bin": b"\x00\xff"}, [UNDEFINED, 7]]},
        {"rooms": [], "except": ["user:1"], "flags": {}}]
    read = json.loads(node("decode", notepack.encode(value).hex()))
    assert read[1]["data"][1] == {"at": {"$date": AT_MS}, "n": 1.5, "bin": {"$bin": [0, 255]}}
    assert read[1]["data"][2] == [None, 7]      # undefined in an array is nil, as notepack writes it
    assert read[2] == {"rooms": [], "except": ["user:1"], "flags": {}}


def test_notepack_2_extension_forms():
    legacy_date = bytes.fromhex("d700") + AT_MS.to_bytes(8, "big", signed=True)
    assert notepack.decode(b"\x92" + bytes.fromhex("d40000") + legacy_date) == [UNDEFINED, JSDate(AT_MS)]
    assert notepack.for_json({"a": UNDEFINED, "b": [UNDEFINED], "c": JSDate(0)}) == \
        {"b": [None], "c": "1970-01-01T00:00:00.000Z"}
    with pytest.raises(ValueError):
        notepack.decode(b"\x93\x01")     # truncated
