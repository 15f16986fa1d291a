"""Route regexes as templated paths (`/api/contacts/{contactId}`): what the OpenAPI document
and the access log (its `route` field and the metrics label) call a route. Reads a route
table; imports none (nexus_chat/routes.py is the table)."""
from __future__ import annotations

import re

import tornado.web


def route_template(pattern: str) -> str:
    """`/api/groups/(?P<groupId>[^/]+)/members/([^/]+)$` -> `/api/groups/{groupId}/members/{memberId}`.

    Named groups keep their names; an unnamed group is named after the path segment before it
    (`members/(…)` -> `memberId`). Raises ValueError on regex syntax a route should not need.
    """
    text = pattern[1:] if pattern.startswith("^") else pattern
    if text.endswith("$") and not text.endswith("\\$"):
        text = text[:-1]
    out: list[str] = []
    names: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            if i + 1 >= len(text) or text[i + 1].isalnum():
                raise ValueError(f"unsupported escape in route {pattern!r}")
            out.append(text[i + 1])
            i += 2
        elif char == "(":
            end = _group_end(text, i, pattern)
            body = text[i + 1:end]
            named = re.match(r"\?P<([A-Za-z_][A-Za-z0-9_]*)>", body)
            if named:
                name = named.group(1)
            elif body.startswith("?"):
                raise ValueError(f"unsupported group in route {pattern!r}")
            elif body in (".*", ".+"):
                name = "path"      # a catch-all: the rest of the path (static files)
            else:
                name = _derived_name("".join(out), len(names))
            while name in names:
                name += "_"
            names.append(name)
            out.append("{" + name + "}")
            i = end + 1
        elif char == "?" and out:
            out.pop()          # `x?` (e.g. an optional trailing slash): the path without it
            i += 1
        elif char in "[]*+|{}.^$":
            raise ValueError(f"unsupported regex syntax {char!r} in route {pattern!r}")
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _group_end(text: str, start: int, pattern: str) -> int:
    depth, i = 0, start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unbalanced parentheses in route {pattern!r}")


def _derived_name(prefix: str, index: int) -> str:
    segments = [s for s in prefix.split("/") if s]
    last = segments[-1] if segments else ""
    if not last or "{" in last:
        return f"param{index + 1}"
    if last.endswith("ies"):
        last = last[:-3] + "y"
    elif last.endswith("s") and not last.endswith("ss"):
        last = last[:-1]
    words = re.split(r"[-_.]", last)
    camel = words[0] + "".join(w[:1].upper() + w[1:] for w in words[1:])
    return camel + "Id"


def route_rules(app: tornado.web.Application) -> list[tuple[str, type]]:
    """(regex pattern, handler class) of every route the application serves."""
    rules = []
    for rule in app.wildcard_router.rules:
        regex = getattr(rule.matcher, "regex", None)
        if regex is not None and isinstance(rule.target, type):
            rules.append((regex.pattern, rule.target))
    return rules
