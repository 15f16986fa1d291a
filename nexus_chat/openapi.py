"""The OpenAPI 3.1 document, generated from the routes and their ``Op`` declarations.

Nothing here is written by hand per route: paths come from the route regexes, parameters and
bodies from the same marshmallow schemas that validate requests (web.BaseHandler), converted by
apispec's MarshmallowPlugin; responses from ``Op.response`` wrapped in the success envelope;
error responses from ``Op.errors`` plus the statuses the web layer answers on its own
(400 validation, 401 without a valid token, 413, 429, 503).
"""
from __future__ import annotations

import re
from typing import Any, Iterable

import tornado.web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from . import __version__
from .errors import reason_phrase
from .routing import route_template
from .schemas.common import Trimmed
from .web import BaseHandler, Op

OPENAPI_VERSION = "3.1.0"
API_PREFIX = "/api/"


def documented(template: str, handler: type) -> bool:
    """The REST API is everything under /api/ (pages like /api-reference and /metrics are not)."""
    return template.startswith(API_PREFIX) and getattr(handler, "openapi", True)


def _route_pairs(routes: Iterable[Any]) -> list[tuple[str, type]]:
    pairs = []
    for route in routes:
        if isinstance(route, (tuple, list)):
            pairs.append((route[0], route[1]))
        else:   # tornado.web.URLSpec / Rule
            pairs.append((route.matcher.regex.pattern, route.target))
    return pairs


# ---- the document (apispec + its MarshmallowPlugin) ---------------------------------------------

INFO_DESCRIPTION = (
    "REST half of Nexus Chat. Every JSON answer is an envelope: "
    "`{success, statusCode, timestamp, message, data}` on success, "
    "`{success: false, statusCode, error, message, path, timestamp, errors?}` on failure. "
    "Every operation may answer 413 (a body over its limit), 429 (the per-IP request limit, "
    "with `Retry-After`) and 503 (the database is busy or down: retry after `Retry-After`). "
    "Real-time messaging is Socket.IO on `/socket.io/`, namespace `/chat`.")

# Statuses the web layer (web.BaseHandler.prepare / write_error) can answer on every operation.
EVERY_OPERATION = (413, 429, 503)

_TIMESTAMP = {"type": "string", "format": "date-time", "examples": ["2026-01-01T09:30:00.123Z"]}
ENVELOPES: dict[str, dict[str, Any]] = {
    "SuccessEnvelope": {
        "type": "object",
        "required": ["success", "statusCode", "timestamp", "message", "data"],
        "properties": {
            "success": {"const": True},
            "statusCode": {"type": "integer", "description": "Equals the HTTP status"},
            "timestamp": _TIMESTAMP,
            "message": {"type": "string"},
            "data": {"description": "The result; null when there is nothing to return"},
        },
    },
    "ErrorEnvelope": {
        "type": "object",
        "required": ["success", "statusCode", "error", "message", "path", "timestamp"],
        "properties": {
            "success": {"const": False},
            "statusCode": {"type": "integer", "description": "Equals the HTTP status"},
            "error": {"type": "string", "description": "The HTTP reason phrase",
                      "examples": ["Bad Request"]},
            "message": {"type": "string"},
            "path": {"type": "string", "examples": ["/api/auth/register"]},
            "timestamp": _TIMESTAMP,
            "errors": {"type": "array", "items": {"type": "string"},
                       "description": "Validation failures only: one `<field>: <message>` each",
                       "examples": [["email: Not a valid email address."]]},
        },
    },
}
SECURITY_SCHEME = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "The access token from POST /api/auth/login"}


def _schema_name(schema: Any) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__
    return name[: -len("Schema")] if name.endswith("Schema") and len(name) > len("Schema") else name


def _schema_class(schema: Any) -> type[Schema]:
    return schema if isinstance(schema, type) else type(schema)


def _error_response_name(status: int) -> str:
    return "Error" + str(status)


class _Document:
    """One build: the APISpec, plus what apispec does not know (envelopes, rules, statuses)."""

    def __init__(self) -> None:
        self.plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
        self.spec = APISpec(title="Nexus Chat API", version=__version__,
                            openapi_version=OPENAPI_VERSION, plugins=[self.plugin],
                            info={"description": INFO_DESCRIPTION})
        self.plugin.converter.add_attribute_function(trimmed2properties)
        for name, schema in ENVELOPES.items():
            self.spec.components.schema(name, schema)
        self.spec.components.security_scheme("bearerAuth", SECURITY_SCHEME)
        self.error_statuses: set[int] = set()
        self.operation_ids: set[str] = set()
        self.tags: list[str] = []
        self.classes: dict[str, type[Schema]] = {}   # component name -> the Schema class

    # -- marshmallow -> JSON Schema (the plugin's converter) --
    def ref(self, schema_cls: type[Schema]) -> dict[str, Any]:
        self.classes[_schema_name(schema_cls)] = schema_cls
        return self.plugin.converter.resolve_nested_schema(schema_cls)

    def inline(self, schema_cls: type[Schema]) -> dict[str, Any]:
        """The object schema of `schema_cls` written out (nested schemas still by $ref)."""
        out = self.plugin.converter.schema2jsonschema(schema_cls)
        return _with_rules(out, schema_cls)

    def field(self, field: fields.Field) -> dict[str, Any]:
        return self.plugin.converter.field2property(field)

    # -- operations --
    def operation(self, handler: type, method: str, op: Op) -> dict[str, Any]:
        operation: dict[str, Any] = {"summary": op.summary,
                                     "operationId": self._operation_id(handler, method)}
        if op.tag:
            operation["tags"] = [op.tag]
            self._tag(op.tag)
        description = []
        if op.query is not None:
            operation["parameters"] = self.query_parameters(op.query)
            rule = getattr(op.query, "RULE", None)
            if rule:
                description.append(rule)
        body = self.request_body(op)
        if body:
            operation["requestBody"] = body
            rule = getattr(op.body, "RULE", None)
            if rule:
                description.append(rule)
        operation["responses"] = self.responses(handler, method, op)
        if op.auth:
            operation["security"] = [{"bearerAuth": []}]
        if op.rate_limit is not None:
            limit = op.rate_limit
            description.append(f"Rate limited: {limit.count} requests per {limit.window_s} s "
                               f"({limit.name}); over it answers 429 with `Retry-After`.")
        if description:
            operation["description"] = " ".join(description)
        return operation

    def _tag(self, tag: str) -> None:
        if tag not in self.tags:
            self.tags.append(tag)

    def _operation_id(self, handler: type, method: str) -> str:
        name = handler.__name__
        if name.endswith("Handler") and len(name) > len("Handler"):
            name = name[: -len("Handler")]
        base = method.lower() + name
        candidate, n = base, 2
        while candidate in self.operation_ids:
            candidate, n = f"{base}{n}", n + 1
        self.operation_ids.add(candidate)
        return candidate

    def query_parameters(self, schema_cls: type[Schema]) -> list[dict[str, Any]]:
        if getattr(schema_cls, "JSON_SCHEMA", None):
            # A rule across parameters (e.g. exactly one of two) is only expressible on one
            # object parameter; `form` + `explode` sends its properties as ordinary parameters.
            schema = self.inline(schema_cls)
            for prop in schema["properties"].values():   # a query string has no null
                _drop_null(prop)
            return [{"name": _schema_name(schema_cls), "in": "query", "style": "form",
                     "explode": True, "required": bool(schema.get("required") or schema.get("oneOf")),
                     "schema": schema, "description": getattr(schema_cls, "RULE", "")}]
        params = []
        for attr, field in schema_cls().fields.items():
            if field.dump_only:
                continue
            schema = self.field(field)
            param: dict[str, Any] = {"name": field.data_key or attr, "in": "query",
                                     "required": bool(field.required), "schema": schema}
            if "description" in schema:
                param["description"] = schema.pop("description")
            params.append(param)
        return params

    def path_parameters(self, handler: type, names: list[str]) -> list[dict[str, Any]]:
        schema_cls = getattr(handler, "path_params", None)
        declared = schema_cls().fields if schema_cls is not None else {}
        params = []
        for name in names:
            field = declared.get(name)
            schema = self.field(field) if field is not None else {"type": "string"}
            param = {"name": name, "in": "path", "required": True, "schema": schema}
            if "description" in schema:
                param["description"] = schema.pop("description")
            params.append(param)
        return params

    def request_body(self, op: Op) -> dict[str, Any] | None:
        if op.body is None and not op.files:
            return None
        content: dict[str, Any] = {}
        if op.body is not None and (op.body().fields or not op.files):
            # (a body of files only, with no fields, is sent as multipart alone)
            content["application/json"] = {"schema": self.ref(op.body)}
        if op.files or op.multipart:
            file_props = {name: {"type": "string", "format": "binary",
                                 "contentMediaType": "application/octet-stream", "description": text}
                          for name, text in op.files.items()}
            # The body's fields and the files in one object (an allOf would not do: the body
            # schema is closed with additionalProperties: false).
            form: dict[str, Any] = {"type": "object", "properties": file_props}
            if op.body is not None:
                fields_schema = self.plugin.converter.schema2jsonschema(op.body)
                for prop in fields_schema["properties"].values():   # a form field is text, never null
                    _drop_null(prop)
                form = {**fields_schema, "properties": {**fields_schema["properties"], **file_props}}
                # A rule about the body's fields and the files together, else the body's rule.
                form.update(getattr(op.body, "FORM_JSON_SCHEMA", None)
                            or getattr(op.body, "JSON_SCHEMA", None) or {})
            content["multipart/form-data"] = {"schema": form}
            if file_props:
                content["multipart/form-data"]["encoding"] = {
                    name: {"contentType": "application/octet-stream"} for name in file_props}
        required = op.body is not None and (
            any(f.required for f in op.body().fields.values())
            or any(getattr(op.body, rule, None) for rule in ("JSON_SCHEMA", "FORM_JSON_SCHEMA")))
        return {"required": required, "content": content}

    def responses(self, handler: type, method: str, op: Op) -> dict[str, Any]:
        raw = getattr(handler, "openapi_responses", {}).get(method)
        responses: dict[str, Any] = dict(raw) if raw else {str(op.status): self.success(op)}
        statuses = set(op.errors) | set(EVERY_OPERATION)
        if op.auth:
            statuses.add(401)
        if op.body is not None or op.query is not None or getattr(handler, "path_params", None):
            statuses.add(400)   # validation
        for status in sorted(statuses):
            self.error_statuses.add(status)
            responses[str(status)] = {"$ref": f"#/components/responses/{_error_response_name(status)}"}
        return responses

    def success(self, op: Op) -> dict[str, Any]:
        if 300 <= op.status < 400:
            return {"description": "Redirect",
                    "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}}}
        if isinstance(op.response, (list, tuple)):
            data: dict[str, Any] = {"type": "array", "items": self.ref(op.response[0])}
        elif isinstance(op.response, dict):
            data = op.response          # a JSON Schema written out (no marshmallow schema)
        elif op.response is not None:
            data = self.ref(op.response)
        else:
            data = {"type": "null"}
        schema = {"allOf": [{"$ref": "#/components/schemas/SuccessEnvelope"},
                            {"type": "object", "properties": {
                                "statusCode": {"const": op.status}, "data": data}}]}
        return {"description": reason_phrase(op.status),
                "content": {"application/json": {"schema": schema}}}

    def static_operation(self, handler: type) -> dict[str, Any]:
        self._tag("Files")
        file = {"application/octet-stream": {
            "schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}
        return {"summary": "A public file (uploaded avatars, group icons, story media)",
                "operationId": self._operation_id(handler, "GET"),
                "tags": ["Files"],
                "responses": {
                    "200": {"description": "The file", "content": file},
                    "206": {"description": "The requested range of the file (`Range`)", "content": file},
                    "304": {"description": "Not Modified (`If-None-Match` / `If-Modified-Since`)"},
                    "404": {"$ref": f"#/components/responses/{_error_response_name(404)}"},
                    "416": {"description": "Range Not Satisfiable"}}}

    def finish(self, paths: dict[str, dict[str, Any]]) -> dict[str, Any]:
        self.error_statuses.add(404)
        for status in sorted(self.error_statuses):
            self.spec.components.response(_error_response_name(status), {
                "description": reason_phrase(status),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}})
        for path, operations in paths.items():
            parameters = operations.pop("parameters", None)
            self.spec.path(path=path, operations=operations, parameters=parameters)
        for tag in self.tags:
            self.spec.tag({"name": tag})
        document = self.spec.to_dict()
        schemas = document["components"]["schemas"]
        for name, cls in self.classes.items():
            if name in schemas:
                schemas[name] = _with_rules(schemas[name], cls)
        return document


def trimmed2properties(self: Any, field: fields.Field, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A Trimmed field's limits apply after trimming: patterns instead of minLength/maxLength."""
    if not isinstance(field, Trimmed):
        return {}
    limits = field.json_schema_limits()
    if not limits:
        return {}
    for key in ("minLength", "maxLength", "pattern"):
        ret.pop(key, None)
    return limits[0] if len(limits) == 1 else {"allOf": limits}


def _drop_null(schema: dict[str, Any]) -> None:
    kind = schema.get("type")
    if isinstance(kind, list) and "null" in kind:
        rest = [k for k in kind if k != "null"]
        schema["type"] = rest[0] if len(rest) == 1 else rest
    if schema.get("default", 0) is None:
        del schema["default"]


def _with_rules(schema: dict[str, Any], cls: type[Schema]) -> dict[str, Any]:
    """Add what the plugin does not write: the class docstring and a schema-level rule
    (`JSON_SCHEMA`, e.g. "exactly one of recipientId or groupId")."""
    out = dict(schema)
    doc = (cls.__doc__ or "").strip()
    if doc and "description" not in out:
        out["description"] = doc
    out.update(getattr(cls, "JSON_SCHEMA", None) or {})
    return out


def build_document(routes: Iterable[Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes` (``nexus_chat.routes.api_routes()``: the table
    the application serves)."""
    doc = _Document()
    paths: dict[str, dict[str, Any]] = {}
    for pattern, handler in _route_pairs(routes):
        template = route_template(pattern)
        if not documented(template, handler):
            continue
        item = paths.setdefault(template, {})
        names = re.findall(r"\{([^}]+)\}", template)
        if names:
            item["parameters"] = doc.path_parameters(handler, names)
        if isinstance(handler, type) and issubclass(handler, BaseHandler):
            for method, op in handler.ops.items():
                item[method.lower()] = doc.operation(handler, method, op)
        elif isinstance(handler, type) and issubclass(handler, tornado.web.StaticFileHandler):
            item["get"] = doc.static_operation(handler)
    return doc.finish(paths)
