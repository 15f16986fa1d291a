"""Static files under ``<public_dir>`` at ``/api/public/…`` (docs/api.md#uploads-and-static-files).

Only regular files inside public/ are served: ``..``, encoded traversal, absolute paths,
hidden files, directories and symlinks all answer 404, in the error envelope."""
from __future__ import annotations

import os
import uuid
from typing import Any

import tornado.web

from nexus_chat.uploads import CONTENT_TYPES
from nexus_chat.web import ApiHandlerMixin


class PublicFileHandler(ApiHandlerMixin, tornado.web.StaticFileHandler):
    ops: dict = {}  # not an API operation (nothing for the OpenAPI document)

    def initialize(self, **_: Any) -> None:  # type: ignore[override]
        self.ctx = self.application.ctx
        self.request_id = self.request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
        self.set_header("X-Request-Id", self.request_id)
        super().initialize(path=str(self.application.ctx.public_dir))

    def allowed_methods(self) -> list[str]:
        return ["GET", "HEAD", "OPTIONS"]

    async def get(self, path: str, include_body: bool = True) -> None:
        try:
            await super().get(path, include_body)
        except tornado.web.HTTPError as exc:
            if exc.status_code in (403, 404):   # "not in root", "not a file": all just absent
                raise tornado.web.HTTPError(404) from None
            raise

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        base = os.path.abspath(root)
        relative = os.path.relpath(os.path.abspath(absolute_path), base)
        parts = relative.split(os.sep)
        if os.path.isabs(relative) or any(not p or p.startswith(".") for p in parts):
            raise tornado.web.HTTPError(404)   # outside public/, hidden, or public/ itself
        if os.path.realpath(absolute_path) != os.path.join(os.path.realpath(base), relative):
            raise tornado.web.HTTPError(404)   # a symlink somewhere on the way
        try:
            return super().validate_absolute_path(root, absolute_path)
        except tornado.web.HTTPError:
            raise tornado.web.HTTPError(404) from None   # directories, missing files, …

    def get_content_type(self) -> str:
        ext = os.path.splitext(self.absolute_path or "")[1].lower()
        return CONTENT_TYPES.get(ext) or super().get_content_type()


routes = [
    (r"/api/public/(.*)", PublicFileHandler),
]
