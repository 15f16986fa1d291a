"""Rooms and broadcasting behind a small adapter interface.

The server gives the adapter a ``deliver(namespace, sid, frames)`` callback at
start-up. A broadcast hands the *same* pre-encoded frames to every receiver,
so a packet is encoded once however many sockets get it. The Redis adapter
(redis_adapter.py) implements the same methods and also publishes the packet
to the other processes, which deliver it to their local sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .engineio_packets import Frame

Deliver = Callable[[str, str, list[Frame]], bool]
Disconnect = Callable[[str, str, bool], None]   # (namespace, sid, close the whole connection)


class Adapter(Protocol):
    def attach(self, deliver: Deliver, disconnect: Disconnect | None = None) -> None: ...
    def join(self, namespace: str, sid: str, room: str) -> None: ...
    def leave(self, namespace: str, sid: str, room: str) -> None: ...
    def leave_all(self, namespace: str, sid: str) -> None: ...
    def rooms_of(self, namespace: str, sid: str) -> set[str]: ...
    def members(self, namespace: str, room: str) -> set[str]: ...
    def broadcast(
        self,
        namespace: str,
        frames: list[Frame],
        rooms: Iterable[str] | None = None,
        except_rooms: Iterable[str] = (),
        packet: Any = None,
        meta: dict[str, Any] | None = None,
    ) -> int: ...
    def add_sockets(self, namespace: str, rooms: Iterable[str], add: Iterable[str]) -> None: ...
    def del_sockets(self, namespace: str, rooms: Iterable[str], remove: Iterable[str]) -> None: ...
    def disconnect_sockets(self, namespace: str, rooms: Iterable[str], close: bool = False) -> None: ...


class InMemoryAdapter:
    """Single-process adapter. Every socket is also in the room named by its sid."""

    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, set[str]]] = {}  # namespace -> room -> sids
        self._sids: dict[str, dict[str, set[str]]] = {}  # namespace -> sid -> rooms
        self._deliver: Deliver | None = None
        self._disconnect: Disconnect | None = None

    def attach(self, deliver: Deliver, disconnect: Disconnect | None = None) -> None:
        self._deliver = deliver
        self._disconnect = disconnect

    def join(self, namespace: str, sid: str, room: str) -> None:
        self._rooms.setdefault(namespace, {}).setdefault(room, set()).add(sid)
        self._sids.setdefault(namespace, {}).setdefault(sid, set()).add(room)

    def leave(self, namespace: str, sid: str, room: str) -> None:
        rooms = self._rooms.get(namespace, {})
        members = rooms.get(room)
        if members is not None:
            members.discard(sid)
            if not members:
                del rooms[room]
        joined = self._sids.get(namespace, {}).get(sid)
        if joined is not None:
            joined.discard(room)
            if not joined:
                del self._sids[namespace][sid]

    def leave_all(self, namespace: str, sid: str) -> None:
        for room in list(self._sids.get(namespace, {}).get(sid, ())):
            self.leave(namespace, sid, room)

    def rooms_of(self, namespace: str, sid: str) -> set[str]:
        return set(self._sids.get(namespace, {}).get(sid, ()))

    def members(self, namespace: str, room: str) -> set[str]:
        return set(self._rooms.get(namespace, {}).get(room, ()))

    def _targets(self, namespace: str, rooms: Iterable[str] | None, except_rooms: Iterable[str]) -> set[str]:
        ns_rooms = self._rooms.get(namespace, {})
        if rooms is None:
            targets = set(self._sids.get(namespace, {}))
        else:
            targets = set()
            for room in rooms:
                targets |= ns_rooms.get(room, set())
        for room in except_rooms:
            targets -= ns_rooms.get(room, set())
        return targets

    def broadcast(
        self,
        namespace: str,
        frames: list[Frame],
        rooms: Iterable[str] | None = None,
        except_rooms: Iterable[str] = (),
        packet: Any = None,
        meta: dict[str, Any] | None = None,
    ) -> int:
        """``packet`` (the Socket.IO packet the frames encode) and ``meta`` (what the
        application tells the other processes about it) are for adapters that pass it on to
        other processes."""
        if self._deliver is None:
            return 0
        count = 0
        for sid in self._targets(namespace, rooms, except_rooms):
            if self._deliver(namespace, sid, frames):
                count += 1
        return count

    # The socketsJoin / socketsLeave / disconnectSockets of Socket.IO: every socket in any of
    # ``rooms`` joins (leaves) the rooms ``add`` (``remove``), or is disconnected.
    def add_sockets(self, namespace: str, rooms: Iterable[str], add: Iterable[str],
                    except_rooms: Iterable[str] = ()) -> None:
        add = tuple(add)
        for sid in self._targets(namespace, rooms, except_rooms):
            for room in add:
                self.join(namespace, sid, room)

    def del_sockets(self, namespace: str, rooms: Iterable[str], remove: Iterable[str],
                    except_rooms: Iterable[str] = ()) -> None:
        remove = tuple(remove)
        for sid in self._targets(namespace, rooms, except_rooms):
            for room in remove:
                self.leave(namespace, sid, room)

    def disconnect_sockets(self, namespace: str, rooms: Iterable[str], close: bool = False,
                           except_rooms: Iterable[str] = ()) -> None:
        if self._disconnect is None:
            return
        for sid in self._targets(namespace, rooms, except_rooms):
            self._disconnect(namespace, sid, close)
