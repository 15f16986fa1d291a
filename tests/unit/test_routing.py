"""The route table: every documented path reaches the handler that documents it, with its
path parameters under their documented names; a literal segment (`/api/groups/invite`) is
never swallowed by a parameter route declared near it. No server: the router alone."""
from __future__ import annotations

import re
import uuid

import pytest
import tornado.web
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from nexus_chat.app import make_app
from nexus_chat.web import BaseHandler, NotFoundHandler

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def app() -> tornado.web.Application:
    return make_app(ctx=None)   # routing never touches the context


def resolve(app, method: str, path: str):
    request = HTTPServerRequest(start_line=RequestStartLine(method, path, "HTTP/1.1"),
                                headers=HTTPHeaders({"Host": "localhost"}))
    return app.find_handler(request)


def sample_path(template: str) -> tuple[str, dict[str, str]]:
    values = {name: str(uuid.uuid4()) for name in re.findall(r"{(\w+)}", template)}
    if "path" in values:
        values["path"] = "avatars/x.png"
    return template.format(**values), values


def test_every_documented_operation_reaches_its_handler(app, document):
    for template, item in document["paths"].items():
        methods = {method.upper() for method in item if method in HTTP_METHODS}
        path, values = sample_path(template)
        found = resolve(app, "GET", path)
        handler = found.handler_class
        assert handler is not NotFoundHandler, template
        if issubclass(handler, BaseHandler):
            assert methods <= set(handler.ops), (template, handler.__name__, methods)
        else:
            assert issubclass(handler, tornado.web.StaticFileHandler) and methods <= {"GET", "HEAD"}
        received = {k: v.decode() for k, v in found.path_kwargs.items()}
        received.update({"path": arg.decode() for arg in found.path_args})
        assert received == values, template


def test_a_parameter_is_one_path_segment(app):
    assert resolve(app, "GET", "/api/groups/a/b").handler_class is NotFoundHandler
    assert resolve(app, "GET", "/api/contacts/a/b").handler_class is NotFoundHandler
    assert resolve(app, "GET", "/api/chat/messages/a/b/c").handler_class is NotFoundHandler


def test_unknown_paths_reach_the_not_found_handler(app):
    for path in ("/api/nope", "/api", "/", "/api/auth/me/extra", "/api/openapiXjson"):
        assert resolve(app, "GET", path).handler_class is NotFoundHandler, path
