"""Why a session or a namespace socket closed: the strings Engine.IO and Socket.IO servers
report (the official server's wording), as one enum. A ``StrEnum``, so a reason is its string
wherever it is logged or handed to ``on_disconnect``."""
from __future__ import annotations

from enum import StrEnum


class CloseReason(StrEnum):
    # the client or the network
    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"
    PING_TIMEOUT = "ping timeout"
    PARSE_ERROR = "parse error"
    PAYLOAD_TOO_LARGE = "payload too large"
    BUFFER_OVERFLOW = "buffer overflow"
    CONNECT_TIMEOUT = "connect timeout"
    ATTACHMENT_TIMEOUT = "attachment timeout"
    CLIENT_NAMESPACE_DISCONNECT = "client namespace disconnect"
    # the server
    SERVER_SHUTTING_DOWN = "server shutting down"
    SERVER_ERROR = "server error"
    FORCED_SERVER_CLOSE = "forced server close"
    SERVER_NAMESPACE_DISCONNECT = "server namespace disconnect"
    RECOVERED_ELSEWHERE = "replaced by a recovered connection"   # its session moved on
    CATCH_UP = "reconnect to catch up"     # the client reconnects and fetches what it missed


# Reasons that point at a misbehaving client rather than a normal goodbye (logged as warnings).
MISBEHAVIOUR = frozenset({CloseReason.PARSE_ERROR, CloseReason.TRANSPORT_ERROR,
                          CloseReason.BUFFER_OVERFLOW, CloseReason.PAYLOAD_TOO_LARGE,
                          CloseReason.ATTACHMENT_TIMEOUT})
