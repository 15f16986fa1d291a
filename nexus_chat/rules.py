"""Input rules checked both where a request is validated (the schemas, for REST and
Socket.IO alike) and by the services that other code may call directly. Written once here;
pure functions, no I/O."""
from __future__ import annotations

from typing import Any

from .errors import validation_failed


def exactly_one_problem(**named: Any) -> str | None:
    """The message when not exactly one of the named values is given (None: fine)."""
    if sum(value is not None for value in named.values()) == 1:
        return None
    return f"Exactly one of {' or '.join(named)} is required."


def require_exactly_one(**named: Any) -> None:
    """400 `Validation failed` with ``target: Exactly one of … is required.``"""
    problem = exactly_one_problem(**named)
    if problem is not None:
        raise validation_failed([f"target: {problem}"])
