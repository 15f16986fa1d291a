"""The private Tornado APIs of the WebSocket transport (nexus_chat/realtime/tornado_private.py):
present in the installed Tornado, which is a version the shim was tested with, and a Tornado
without them is refused loudly rather than reporting an empty send buffer."""
from __future__ import annotations

import pytest
import tornado
from tornado.websocket import WebSocketProtocol13

from nexus_chat.realtime import tornado_private


def test_the_installed_tornado_is_a_tested_version():
    assert tornado_private.version_tested(), (tornado.version, tornado_private.TESTED)


def test_the_private_apis_are_there():
    tornado_private.check()


def test_a_tornado_without_them_is_refused(monkeypatch):
    monkeypatch.delattr(WebSocketProtocol13, "_write_frame")
    with pytest.raises(RuntimeError, match="WebSocketProtocol13._write_frame"):
        tornado_private.check()


def test_no_connection_has_nothing_unsent():
    assert tornado_private.unsent_bytes(None) == 0


def test_a_tornado_without_the_upgrade_hook_is_refused(monkeypatch):
    from tornado.websocket import WebSocketHandler
    monkeypatch.delattr(WebSocketHandler, "_detach_stream")
    with pytest.raises(RuntimeError, match="WebSocketHandler._detach_stream"):
        tornado_private.check()


def test_a_tornado_whose_handlers_keep_headers_elsewhere_is_refused(monkeypatch):
    from tornado.web import RequestHandler

    def clear(self):
        self._other = {}
    monkeypatch.setattr(RequestHandler, "clear", clear)
    with pytest.raises(RuntimeError, match="RequestHandler._headers"):
        tornado_private.check()
