"""Delivery: turns the records published on the events port (nexus_chat/events.py) into
Socket.IO room operations on the `/chat` namespace. It decides nothing: who receives what was
decided by the service that published it.

Rooms: every `/chat` connection of a user is in ``user:<id>``, in ``session:<id>`` of the login
session its token belongs to, and in ``group:<id>`` for each group the user belongs to
(joined on connect and kept in step by membership records).
"""
from __future__ import annotations

from typing import Any

from nexus_chat.events import Audience, Emit, GroupDeleted, MembershipChange, Record, UserDeleted
from nexus_chat.offsets import Progress, WriterMark
from nexus_chat.realtime.server import Socket, SocketServer

CHAT = "/chat"


# The field of a Redis adapter message's opts that names an event's writer and offset.
ORIGIN = "nexusOffset"


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def group_room(group_id: str) -> str:
    return f"group:{group_id}"


def session_room(session_id: str) -> str:
    """The sockets opened with access tokens of one login session (revocation)."""
    return f"session:{session_id}"


class SocketDelivery:
    """A listener on ``ctx.events`` that acts on the connections of this process."""

    def __init__(self, server: SocketServer, *, with_offsets: bool = False,
                 progress: Progress | None = None) -> None:
        self.server = server
        # Offsets go to clients only with connection-state recovery on: a client that does
        # not expect them would take the extra argument as part of the event.
        self.with_offsets = with_offsets
        # What this process delivered, writer by writer: each stored event carries it, as the
        # client's position, whichever process stored the event (nexus_chat/offsets.py).
        self.progress = progress if progress is not None else Progress()
        if hasattr(server.adapter, "on_remote_event"):     # events of the other processes
            server.adapter.on_remote_event = self.remote_event
            server.adapter.on_marks = self.marks

    def sockets_of(self, user_id: str) -> list[Socket]:
        return self.server.sockets_in_room(CHAT, user_room(user_id))

    def __call__(self, record: Record) -> None:
        # Room operations go through the adapter: with the Redis adapter they reach the
        # connections of every process (socketsJoin / socketsLeave / disconnectSockets).
        if isinstance(record, Emit):
            self.emit(record)
        else:
            self._move(record, self.server.adapter)

    def from_peer(self, record: Record) -> None:
        """A membership record another process published (cluster/sync.py): applied to this
        process's sockets before that process answers its request, so that a kicked member
        here misses the group's next message whichever process sends it."""
        adapter = self.server.adapter
        self._move(record, getattr(adapter, "local", adapter))

    @staticmethod
    def _move(record: Record, adapter) -> None:
        if isinstance(record, MembershipChange):
            users = [user_room(user_id) for user_id in record.user_ids]
            if record.joined:
                adapter.add_sockets(CHAT, users, [group_room(record.group_id)])
            else:
                adapter.del_sockets(CHAT, users, [group_room(record.group_id)])
        elif isinstance(record, GroupDeleted):
            room = group_room(record.group_id)
            adapter.del_sockets(CHAT, [room], [room])
        elif isinstance(record, UserDeleted):
            adapter.disconnect_sockets(CHAT, [user_room(record.user_id)])

    def disconnect_sessions(self, session_ids: list[str]) -> None:
        """Revoked sessions (a listener of ``ctx.revoked_sessions``): their sockets go at
        once (the handshake refuses them again)."""
        for session_id in session_ids:
            for socket in self.server.sockets_in_room(CHAT, session_room(session_id)):
                socket.disconnect()

    def emit(self, record: Emit) -> int:
        """Encoded once for the whole audience; the position of a client that has this event
        (this process's progress) travels as the last argument, the offset of the Socket.IO
        connection-state-recovery convention. The other processes learn which writer stored
        it at which offset (``nexusOffset``) and stamp their own progress."""
        rooms, skip = rooms_of(record.audience)
        if record.offset is None or record.writer is None:
            return self.server.emit(CHAT, record.event, record.payload, room=rooms, skip_sid=skip)
        offset = int(record.offset)
        self.progress.advance(record.writer, offset)
        args = (record.payload, self.progress.stamp()) if self.with_offsets else (record.payload,)
        return self.server.emit(CHAT, record.event, *args, room=rooms, skip_sid=skip,
                                meta={ORIGIN: [record.writer, offset]})

    def emit_here(self, record: Emit) -> int:
        """A stored event of another process that did not come through Redis (read from the
        event log after an outage, socket_gap_fill.py): to this process's sockets only."""
        rooms, skip = rooms_of(record.audience)
        self.progress.advance(record.writer, int(record.offset))
        args = (record.payload, self.progress.stamp()) if self.with_offsets else (record.payload,)
        return self.server.emit(CHAT, record.event, *args, room=rooms, skip_sid=skip, local=True)

    def remote_event(self, args: list, opts: dict[str, Any]) -> list | None:
        """An event from another process (through the Redis adapter), before it is encoded
        for the sockets here: this process's progress moves on and replaces the sender's
        stamp. None (dropped) for one delivered here already, read from the event log."""
        origin = opts.get(ORIGIN)
        if not (isinstance(origin, list) and len(origin) == 2
                and all(type(n) is int and 0 < n < 2 ** 63 for n in origin)):
            if self.with_offsets and len(args) > 2 and isinstance(args[-1], str) and args[-1].isdigit():
                # A process of the previous version (a rolling upgrade): its offset of digits
                # would count as none here; this process's position is the next best thing.
                return [*args[:-1], self.progress.stamp()]
            return args
        last = self.progress.last(origin[0])
        if last is not None and origin[1] <= last:
            return None
        self.progress.advance(origin[0], origin[1])
        if self.with_offsets and len(args) > 2 and isinstance(args[-1], str):
            return [*args[:-1], self.progress.stamp()]
        return args

    def marks(self, marks: dict[str, str]) -> None:
        """Subscribed (again) to Redis: each writer's last event published before; those
        that did not reach this process never will."""
        for source, value in marks.items():
            mark = WriterMark.parse(source, value)
            if mark is None:
                continue
            if mark.start is not None and self.progress.last(mark.writer) is None:
                self.progress.started(mark.writer, mark.start)
            self.progress.advance(mark.writer, mark.offset, at=float(mark.at))


def rooms_of(audience: Audience) -> tuple[list[str], set[str]]:
    """(rooms to reach, rooms to skip); a socket id is a room holding that one socket."""
    rooms = [user_room(u) for u in audience.users] + [group_room(g) for g in audience.groups]
    skip = {user_room(u) for u in audience.except_users}
    if audience.except_socket is not None:
        skip.add(audience.except_socket)
    return rooms, skip
