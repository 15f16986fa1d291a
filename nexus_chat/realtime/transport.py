"""What the engine needs from a transport that carries a session, so that engine.py depends on
this interface and not on the transports (polling.py and websocket.py import the engine, never
the other way round; endpoint.py is the one module that knows them all)."""
from __future__ import annotations

from typing import Protocol

from .engineio_packets import Frame


class FrameTransport(Protocol):
    """A WebSocket carrying (or being probed to carry) a session."""

    def send_frame(self, frame: Frame) -> None:
        """Write one frame without waiting for the peer."""

    def unsent_bytes(self) -> int:
        """Bytes written but not yet handed to the kernel (backpressure)."""

    def close(self) -> None: ...
