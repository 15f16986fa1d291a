"""Hostile Engine.IO / Socket.IO input, generated from a seed (tests/e2e/test_protocol_fuzz.py sends it).

A *case* is what one hostile client does on one connection: a transport and the messages it
sends in order. Messages are ``str`` (a text frame, or a polling record) or ``bytes`` (a binary
frame, or random bytes as a polling body). Pure functions of a ``random.Random``: the same seed
gives the same cases.
"""
from __future__ import annotations

import json
import random
import string
import uuid
from dataclasses import dataclass, field

NAMESPACES = ["/", "/chat", "/nope", "/chat/", "/CHAT", "", "/" + "x" * 300, "/\u00e9\u4e2d", "/chat,",
              "//", "/socket.io"]
EVENTS = ["sendMessage", "getMessages", "markConversationAsRead", "editMessage", "deleteMessage",
          "reactToMessage", "joinGroup", "leaveGroup", "typing", "message", "connect", "disconnect",
          "__proto__", "constructor", "x" * 1000, ""]


@dataclass
class Case:
    kind: str
    transport: str                 # "websocket" or "polling"
    messages: list[str | bytes] = field(default_factory=list)
    sid: str | None = None         # a made-up session id (unknown sids)
    connect_chat: bool = False     # CONNECT /chat with the fuzz user's token first
    oversize: int = 0              # also send one frame / POST this large
    mixed: bool = False            # open a session on one transport, use it on the other


def random_text(rng: random.Random, size: int) -> str:
    alphabet = string.printable + "\u00e9\u4e2d\U0001f600\x00\x1e{}[]\",:0123456789"
    return "".join(rng.choice(alphabet) for _ in range(size))


def random_json(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**53, 2**64, 1.5e308, -0.0, rng.randrange(-10**6, 10**6)])
    if kind == 3:
        return random_text(rng, rng.randrange(0, 40))
    if kind == 4:
        return rng.choice([str(uuid.uuid4()), "00000000-0000-0000-0000-000000000000", "", " " * 10])
    if kind in (5, 6):
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    keys = ["recipientId", "groupId", "content", "clientMessageId", "messageId", "conversationId",
            "emoji", "react", "isTyping", "limit", "offset", "before", "_placeholder", "num", "token"]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(0, 6))}


def nested(rng: random.Random) -> str:
    depth = rng.choice([20, 33, 100, 990, 5000, 20000])
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
    return opener * depth + "1" + closer * depth


def placeholders(count: int, start: int = 0) -> str:
    return ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(start, start + count))


def namespace_prefix(nsp: str) -> str:
    return "" if nsp == "/" else nsp + ","


def socketio_packet(rng: random.Random, nsp: str | None = None) -> str:
    """One Socket.IO packet (as an Engine.IO message ``4…``), often malformed."""
    nsp = nsp if nsp is not None else rng.choice(NAMESPACES)
    prefix = namespace_prefix(nsp)
    kind = rng.randrange(12)
    if kind == 0:   # plausible event with random arguments, random ack id
        ack = rng.choice(["", "0", "7", str(rng.randrange(10**6))])
        args = [rng.choice(EVENTS)] + [random_json(rng) for _ in range(rng.randrange(0, 3))]
        return f"42{prefix}{ack}{json.dumps(args)}"
    if kind == 1:   # huge ack id
        return f"42{prefix}{'9' * rng.choice([15, 16, 40, 1000, 100000])}[\"sendMessage\",{{}}]"
    if kind == 2:   # deep nesting
        return f'42{prefix}["{rng.choice(EVENTS)}",{nested(rng)}]'
    if kind == 3:   # CONNECT with junk auth
        return "40" + prefix + rng.choice(["", "{", "null", "[]", '"x"', json.dumps(random_json(rng))])
    if kind == 4:   # DISCONNECT, CONNECT_ERROR from a client, unknown types
        return f"4{rng.choice(['1', '4', '7', '9', 'a', '-'])}{prefix}{rng.choice(['', '{}', '[1]'])}"
    if kind == 5:   # ack for something never sent
        return f"43{prefix}{rng.randrange(10**9)}{json.dumps([random_json(rng)])}"
    if kind == 6:   # lying attachment count (sent on its own: the binaries never come)
        return f'45{rng.choice([0, 1, 3, 999, 1000, 1001, 10**9])}-{prefix}["x",{placeholders(rng.randrange(0, 4))}]'
    if kind == 7:   # placeholder pointing nowhere
        return f'451-{prefix}["x",{{"_placeholder":true,"num":{rng.choice([-1, 1, 10**20, "0", None])}}}]'
    if kind == 8:   # truncated valid packet
        whole = f'42{prefix}5["sendMessage",{{"recipientId":"{uuid.uuid4()}","content":"hi"}}]'
        return whole[: rng.randrange(1, len(whole))]
    if kind == 9:   # not JSON at all
        return "42" + prefix + random_text(rng, rng.randrange(0, 60))
    if kind == 10:  # binary ack with attachments
        return f'46{rng.choice([1, 2])}-{prefix}{rng.randrange(100)}[{placeholders(1)}]'
    return "4" + random_text(rng, rng.randrange(0, 80))


def engineio_text(rng: random.Random) -> str:
    """An Engine.IO text packet that is not a Socket.IO message."""
    return rng.choice(["", "0", "1", "2", "2probe", "3", "3probe", "5", "6", "7", "8x", "9",
                       "0{\"sid\":\"x\"}", " 4", "\x1e", "b", "bAQID", "b!!!"]) + \
        (random_text(rng, rng.randrange(0, 20)) if rng.random() < 0.2 else "")


def message(rng: random.Random, nsp: str | None = None) -> str | bytes:
    roll = rng.random()
    if roll < 0.6:
        return socketio_packet(rng, nsp)
    if roll < 0.8:
        return engineio_text(rng)
    if roll < 0.9:
        return rng.randbytes(rng.randrange(0, 200))
    return random_text(rng, rng.randrange(0, 200))


def lying_attachments(rng: random.Random, nsp: str) -> list[str | bytes]:
    announced = rng.choice([1, 2, 3, 50])
    sent = rng.choice([0, announced - 1, announced + 1, announced * 3])
    header = f'45{announced}-{namespace_prefix(nsp)}["sendMessage",{placeholders(min(announced, 5))}]'
    return [header] + [rng.randbytes(rng.choice([0, 1, 100, 60_000])) for _ in range(max(0, sent))]


def make_case(rng: random.Random) -> Case:
    transport = rng.choice(["websocket", "polling"])
    kind = rng.choice(["garbage", "garbage", "chat", "chat", "before_connect", "attachments",
                       "unknown_sid", "oversize", "mixed", "bad_namespace"])
    count = rng.randrange(1, 25)
    case = Case(kind, transport)
    if kind == "garbage":
        case.messages = [message(rng) for _ in range(count)]
    elif kind == "chat":          # logged in on /chat, then hostile events there
        case.connect_chat = True
        case.messages = [message(rng, "/chat") if rng.random() < 0.8 else socketio_packet(rng, "/chat")
                         for _ in range(count)]
    elif kind == "before_connect":
        case.messages = [f'42/chat,{rng.randrange(10)}["sendMessage",{json.dumps(random_json(rng))}]'
                         for _ in range(count)]
    elif kind == "attachments":
        nsp = rng.choice(["/", "/chat"])
        case.connect_chat = nsp == "/chat"
        case.messages = (["40"] if nsp == "/" else []) + lying_attachments(rng, nsp)
    elif kind == "unknown_sid":
        case.sid = rng.choice([str(uuid.uuid4()), "x" * rng.randrange(1, 500), "", "../../etc"])
        case.messages = [message(rng) for _ in range(rng.randrange(1, 4))]
    elif kind == "oversize":
        case.oversize = rng.choice([1_000_001, 1_500_000, 3_000_000])
        case.messages = [message(rng) for _ in range(rng.randrange(0, 3))]
    elif kind == "mixed":
        case.mixed = True
        case.messages = [message(rng) for _ in range(count)]
    else:
        case.messages = [f"40{namespace_prefix(rng.choice(NAMESPACES))}{json.dumps(random_json(rng))}"
                         for _ in range(count)]
    return case
