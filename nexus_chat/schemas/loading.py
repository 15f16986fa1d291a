"""Validating input against a schema: the one way REST routes (web.py), URL path ids and
Socket.IO events (handlers/realtime.py) do it, with the same 400 and the same messages."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError

from ..errors import validation_failed

# One instance per schema class: building one costs more than a validation.
_instances: dict[type[Schema], Schema] = {}


def format_errors(messages: Any, prefix: str = "") -> list[str]:
    """marshmallow's nested error dict -> ["field: message", …]."""
    if isinstance(messages, list):
        out = []
        for item in messages:
            if isinstance(item, (dict, list)):
                out.extend(format_errors(item, prefix))
            else:
                out.append(f"{prefix}: {item}" if prefix else str(item))
        return out
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            name = "body" if key == "_schema" else str(key)
            out.extend(format_errors(value, f"{prefix}.{name}" if prefix else name))
        return out
    return [f"{prefix}: {messages}" if prefix else str(messages)]


def load_schema(schema_cls: type[Schema], data: Any) -> dict[str, Any]:
    """The validated data, or the 400 `Validation failed` envelope listing what is wrong.

    A schema may have an ``accept_plain(data)`` shortcut (hot paths such as `sendMessage`):
    the same result for the inputs it accepts, None to leave the rest to marshmallow."""
    accept_plain = getattr(schema_cls, "accept_plain", None)
    if accept_plain is not None:
        loaded = accept_plain(data)
        if loaded is not None:
            return loaded
    schema = _instances.get(schema_cls)
    if schema is None:
        schema = _instances[schema_cls] = schema_cls()
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise validation_failed(format_errors(exc.messages)) from None
