"""The OpenAPI 3.1 document, generated from the routes and their ``Op`` declarations.

Nothing here is written by hand per route: paths come from the route regexes, parameters and
bodies from the same marshmallow schemas that validate requests (web.BaseHandler), responses
from ``Op.response`` wrapped in the success envelope, and error responses from ``Op.errors``.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

import tornado.web
from marshmallow import RAISE, Schema, fields, missing, validate

from . import __version__
from .errors import reason_phrase
from .routing import route_template
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


# ---- marshmallow -> JSON Schema (2020-12, as OpenAPI 3.1 uses it) -------------------------------

# Field classes in subclass-first order: the first match wins.
_SIMPLE: tuple[tuple[type, dict[str, Any]], ...] = (
    (fields.UUID, {"type": "string", "format": "uuid"}),
    (fields.Email, {"type": "string", "format": "email"}),
    (fields.URL, {"type": "string", "format": "uri"}),
    (fields.IP, {"type": "string"}),
    (fields.String, {"type": "string"}),
    (fields.Integer, {"type": "integer"}),
    (fields.Number, {"type": "number"}),
    (fields.Boolean, {"type": "boolean"}),
    (fields.NaiveDateTime, {"type": "string", "format": "date-time"}),
    (fields.AwareDateTime, {"type": "string", "format": "date-time"}),
    (fields.DateTime, {"type": "string", "format": "date-time"}),
    (fields.Date, {"type": "string", "format": "date"}),
    (fields.Time, {"type": "string", "format": "time"}),
    (fields.TimeDelta, {"type": "number"}),
)

# metadata keys copied into the JSON Schema as they are
_METADATA_KEYS = ("description", "title", "examples", "example", "format", "deprecated",
                  "minLength", "maxLength", "minimum", "maximum", "pattern", "enum", "minItems",
                  "maxItems", "contentMediaType")


class SchemaRegistry:
    """Turns marshmallow Schema classes into `components.schemas` entries, one per class."""

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}
        self._names: dict[type[Schema], str] = {}

    def ref(self, schema_cls: type[Schema]) -> dict[str, Any]:
        name = self._names.get(schema_cls)
        if name is None:
            base = schema_cls.__name__
            if base.endswith("Schema") and len(base) > len("Schema"):
                base = base[: -len("Schema")]
            name, n = base, 2
            while name in self.components:
                name, n = f"{base}{n}", n + 1
            self._names[schema_cls] = name
            self.components[name] = {}          # reserve: recursive schemas refer to it
            self.components[name] = self.object_schema(schema_cls)
        return {"$ref": f"#/components/schemas/{name}"}

    def object_schema(self, schema_cls: type[Schema]) -> dict[str, Any]:
        schema = schema_cls()
        properties: dict[str, Any] = {}
        required: list[str] = []
        for attr, field in schema.fields.items():
            key = field.data_key or attr
            properties[key] = self.field(field)
            if field.required:
                required.append(key)
        out: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            out["required"] = required
        if schema.unknown == RAISE:
            out["additionalProperties"] = False
        doc = (schema_cls.__doc__ or "").strip()
        if doc:
            out["description"] = doc
        return out

    def field(self, field: fields.Field) -> dict[str, Any]:
        out = self._base(field)
        for validator in _validators(field):
            out.update(_validator_schema(validator, out))
        for key in _METADATA_KEYS:
            if key in field.metadata:
                out[key] = field.metadata[key]
        default = field.load_default
        if default is not missing and not callable(default) and _json_scalar(default):
            out["default"] = default
        if field.dump_only:
            out["readOnly"] = True
        if field.load_only:
            out["writeOnly"] = True
        if field.allow_none:
            out = _nullable(out)
        return out

    def _base(self, field: fields.Field) -> dict[str, Any]:
        if isinstance(field, fields.Pluck):
            return {}   # one field of another schema: any JSON value
        if isinstance(field, fields.Nested):
            nested = field.nested
            if callable(nested) and not isinstance(nested, type):
                nested = nested()
            if isinstance(nested, Schema):
                nested = type(nested)
            if not (isinstance(nested, type) and issubclass(nested, Schema)):
                return {}
            ref = self.ref(nested)
            return {"type": "array", "items": ref} if field.many else dict(ref)
        if isinstance(field, fields.List):
            return {"type": "array", "items": self.field(field.inner)}
        if isinstance(field, fields.Tuple):
            items = [self.field(f) for f in field.tuple_fields]
            return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
        if isinstance(field, fields.Dict):
            value = getattr(field, "value_field", None)
            return {"type": "object", "additionalProperties": self.field(value) if value else True}
        if isinstance(field, fields.Enum):
            return {"enum": [m.value if field.by_value else m.name for m in field.enum]}
        if isinstance(field, fields.Constant):
            return {"const": field.constant}
        for cls, schema in _SIMPLE:
            if isinstance(field, cls):
                return dict(schema)
        return {}   # Raw, Method, Function: any JSON value


def _validators(field: fields.Field) -> list[Any]:
    return list(getattr(field, "validators", []) or [])


def _validator_schema(validator: Any, current: dict[str, Any]) -> dict[str, Any]:
    is_array = current.get("type") == "array"
    if isinstance(validator, validate.Length):
        out = {}
        if validator.equal is not None:
            lo = hi = validator.equal
        else:
            lo, hi = validator.min, validator.max
        if lo is not None:
            out["minItems" if is_array else "minLength"] = lo
        if hi is not None:
            out["maxItems" if is_array else "maxLength"] = hi
        return out
    if isinstance(validator, validate.Range):
        out = {}
        if validator.min is not None:
            out["minimum" if validator.min_inclusive else "exclusiveMinimum"] = validator.min
        if validator.max is not None:
            out["maximum" if validator.max_inclusive else "exclusiveMaximum"] = validator.max
        return out
    if isinstance(validator, validate.OneOf):
        return {"enum": list(validator.choices)}
    if isinstance(validator, validate.Equal):
        return {"const": validator.comparable}
    if isinstance(validator, validate.Regexp):
        return {"pattern": validator.regex.pattern}
    return {}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str):
        schema = dict(schema, type=[kind, "null"])
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        return schema
    if "$ref" in schema or "enum" in schema or "const" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


def _json_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


# ---- the document -------------------------------------------------------------------------------

def _envelopes() -> dict[str, Any]:
    timestamp = {"type": "string", "format": "date-time", "examples": ["2026-01-01T09:30:00.123Z"]}
    return {
        "SuccessEnvelope": {
            "type": "object",
            "required": ["success", "statusCode", "timestamp", "message", "data"],
            "properties": {
                "success": {"const": True},
                "statusCode": {"type": "integer", "description": "Equals the HTTP status"},
                "timestamp": timestamp,
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
                "timestamp": timestamp,
                "errors": {"type": "array", "items": {"type": "string"},
                           "description": "Validation failures only: one `<field>: <message>` each",
                           "examples": [["email: Not a valid email address."]]},
            },
        },
    }


def _error_response_name(status: int) -> str:
    return "Error" + str(status)


class _Builder:
    def __init__(self) -> None:
        self.registry = SchemaRegistry()
        self.error_statuses: set[int] = set()
        self.operation_ids: set[str] = set()
        self.tags: list[str] = []

    def operation(self, template: str, handler: type, method: str, op: Op) -> dict[str, Any]:
        operation: dict[str, Any] = {"summary": op.summary,
                                     "operationId": self._operation_id(handler, method)}
        if op.tag:
            operation["tags"] = [op.tag]
            if op.tag not in self.tags:
                self.tags.append(op.tag)
        if op.query is not None:
            operation["parameters"] = self.query_parameters(op.query)
        body = self.request_body(op)
        if body:
            operation["requestBody"] = body
        operation["responses"] = self.responses(handler, method, op)
        if op.auth:
            operation["security"] = [{"bearerAuth": []}]
        if op.rate_limit is not None:
            limit = op.rate_limit
            operation["description"] = (f"Rate limited: {limit.count} requests per {limit.window_s} s "
                                        f"({limit.name}); over it answers 429 with `Retry-After`.")
        return operation

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
        params = []
        for attr, field in schema_cls().fields.items():
            if field.dump_only:
                continue
            schema = self.registry.field(field)
            param: dict[str, Any] = {"name": field.data_key or attr, "in": "query",
                                     "required": bool(field.required), "schema": schema}
            if "description" in schema:
                param["description"] = schema["description"]
            params.append(param)
        return params

    def request_body(self, op: Op) -> dict[str, Any] | None:
        if op.body is None and not op.files:
            return None
        content: dict[str, Any] = {}
        ref = self.registry.ref(op.body) if op.body is not None else None
        if ref is not None:
            content["application/json"] = {"schema": ref}
        if op.files or op.multipart:
            file_props = {name: {"type": "string", "format": "binary",
                                 "contentMediaType": "application/octet-stream", "description": text}
                          for name, text in op.files.items()}
            # The body's fields and the files in one object (an allOf would not do: the body
            # schema is closed with additionalProperties: false).
            form: dict[str, Any] = {"type": "object", "properties": file_props}
            if op.body is not None:
                fields_schema = self.registry.components[ref["$ref"].rsplit("/", 1)[1]]
                form = {**fields_schema, "properties": {**fields_schema["properties"], **file_props}}
            content["multipart/form-data"] = {"schema": form}
            if file_props:
                content["multipart/form-data"]["encoding"] = {
                    name: {"contentType": "application/octet-stream"} for name in file_props}
        required = op.body is not None and any(f.required for f in op.body().fields.values())
        return {"required": required, "content": content}

    def responses(self, handler: type, method: str, op: Op) -> dict[str, Any]:
        raw = getattr(handler, "openapi_responses", {}).get(method)
        responses: dict[str, Any] = dict(raw) if raw else {}
        if not raw:
            responses[str(op.status)] = self.success(op)
        statuses = set(op.errors) | ({401} if op.auth else set())
        for status in sorted(statuses):
            self.error_statuses.add(status)
            responses[str(status)] = {"$ref": f"#/components/responses/{_error_response_name(status)}"}
        return responses

    def success(self, op: Op) -> dict[str, Any]:
        if 300 <= op.status < 400:
            return {"description": "Redirect",
                    "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}}}
        if isinstance(op.response, (list, tuple)):
            data: dict[str, Any] = {"type": "array", "items": self.registry.ref(op.response[0])}
        elif op.response is not None:
            data = self.registry.ref(op.response)
        else:
            data = {"type": "null"}
        schema = {"allOf": [{"$ref": "#/components/schemas/SuccessEnvelope"},
                            {"type": "object", "properties": {
                                "statusCode": {"const": op.status}, "data": data}}]}
        return {"description": reason_phrase(op.status),
                "content": {"application/json": {"schema": schema}}}

    def static_operation(self, handler: type) -> dict[str, Any]:
        if "Files" not in self.tags:
            self.tags.append("Files")
        return {"summary": "A public file (uploaded avatars, group icons, story media)",
                "operationId": self._operation_id(handler, "GET"),
                "tags": ["Files"],
                "responses": {
                    "200": {"description": "The file",
                            "content": {"application/octet-stream": {
                                "schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
                    "404": {"description": "Not Found"}}}


def build_document(routes: Iterable[Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes` (``nexus_chat.routes.api_routes()``: the table
    the application serves)."""
    builder = _Builder()
    paths: dict[str, dict[str, Any]] = {}
    for pattern, handler in _route_pairs(routes):
        template = route_template(pattern)
        if not documented(template, handler):
            continue
        item = paths.setdefault(template, {})
        names = re.findall(r"\{([^}]+)\}", template)
        if names:
            item["parameters"] = [{"name": name, "in": "path", "required": True,
                                   "schema": {"type": "string"}} for name in names]
        if isinstance(handler, type) and issubclass(handler, BaseHandler):
            for method, op in handler.ops.items():
                item[method.lower()] = builder.operation(template, handler, method, op)
        elif isinstance(handler, type) and issubclass(handler, tornado.web.StaticFileHandler):
            item["get"] = builder.static_operation(handler)
    error_responses = {
        _error_response_name(status): {
            "description": reason_phrase(status),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
        for status in sorted(builder.error_statuses)}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Nexus Chat API",
            "version": __version__,
            "description": ("REST half of Nexus Chat. Every JSON answer is an envelope: "
                            "`{success, statusCode, timestamp, message, data}` on success, "
                            "`{success: false, statusCode, error, message, path, timestamp, errors?}` "
                            "on failure. Real-time messaging is Socket.IO on `/socket.io/`, "
                            "namespace `/chat`."),
        },
        "tags": [{"name": tag} for tag in builder.tags],
        "paths": paths,
        "components": {
            "schemas": {**_envelopes(), **builder.registry.components},
            "responses": error_responses,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                               "description": "The access token from POST /api/auth/login"}},
        },
    }
