"""Close reasons are CloseReason members (nexus_chat/realtime/reasons.py), not free strings:
no call in the protocol layer closes or disconnects with a string literal."""
from __future__ import annotations

import ast
from pathlib import Path

from nexus_chat.realtime.reasons import MISBEHAVIOUR, CloseReason

REALTIME = Path(__file__).resolve().parents[2] / "nexus_chat" / "realtime"
CALLS = {"close", "close_all", "notify_disconnect", "dispatch_close"}


def literal_reasons() -> list[str]:
    found = []
    for path in sorted(REALTIME.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CALLS:
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        found.append(f"{path.name}:{node.lineno} {node.func.attr}({arg.value!r})")
    return found


def test_no_close_reason_is_a_free_string():
    assert literal_reasons() == []


def test_a_reason_is_its_protocol_string():
    assert f"{CloseReason.PING_TIMEOUT}" == "ping timeout" == CloseReason.PING_TIMEOUT
    assert CloseReason.PARSE_ERROR in MISBEHAVIOUR and CloseReason.TRANSPORT_CLOSE not in MISBEHAVIOUR
