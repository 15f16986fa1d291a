"""The private Tornado APIs of the WebSocket transport (nexus_chat/realtime/tornado_private.py):
present in the installed Tornado, which is a version the shim was tested with, and a Tornado
without them is refused loudly rather than losing the bytes read with an upgrade request."""
from __future__ import annotations

import os

import pytest
import tornado
import tornado.util

from nexus_chat.realtime import tornado_private


def test_the_installed_tornado_is_a_tested_version():
    assert tornado_private.version_tested(), (tornado.version, tornado_private.TESTED)


def test_the_private_apis_are_there():
    tornado_private.check()


def test_a_tornado_without_the_mask_is_refused(monkeypatch):
    monkeypatch.delattr(tornado.util, "_websocket_mask")
    with pytest.raises(RuntimeError, match="tornado.util._websocket_mask"):
        tornado_private.check()


def test_a_tornado_whose_streams_buffer_elsewhere_is_refused(monkeypatch):
    from tornado.iostream import BaseIOStream

    def init(self, *args, **kwargs):
        self._other = bytearray()
    monkeypatch.setattr(BaseIOStream, "__init__", init)
    with pytest.raises(RuntimeError, match="BaseIOStream._read_buffer"):
        tornado_private.check()


def test_the_mask_unmasks():
    mask, data = os.urandom(4), os.urandom(1000)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert tornado_private.websocket_mask(mask, masked) == data
