"""Delivery: turns the records published on the events port (nexus_chat/events.py) into
Socket.IO room operations on the `/chat` namespace. It decides nothing: who receives what was
decided by the service that published it.

Rooms: every `/chat` connection of a user is in ``user:<id>``, in ``session:<id>`` of the login
session its token belongs to, and in ``group:<id>`` for each group the user belongs to
(joined on connect and kept in step by membership records).
"""
from __future__ import annotations

from nexus_chat.events import Audience, Emit, GroupDeleted, MembershipChange, Record, UserDeleted
from nexus_chat.realtime.server import Socket, SocketServer

CHAT = "/chat"


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def group_room(group_id: str) -> str:
    return f"group:{group_id}"


def session_room(session_id: str) -> str:
    """The sockets opened with access tokens of one login session (revocation)."""
    return f"session:{session_id}"


class SocketDelivery:
    """A listener on ``ctx.events`` that acts on the connections of this process."""

    def __init__(self, server: SocketServer, *, with_offsets: bool = False) -> None:
        self.server = server
        # Offsets go to clients only with connection-state recovery on: a client that does
        # not expect them would take the extra argument as part of the event.
        self.with_offsets = with_offsets

    def sockets_of(self, user_id: str) -> list[Socket]:
        return self.server.sockets_in_room(CHAT, user_room(user_id))

    def __call__(self, record: Record) -> None:
        # Room operations go through the adapter: with the Redis adapter they reach the
        # connections of every process (socketsJoin / socketsLeave / disconnectSockets).
        adapter = self.server.adapter
        if isinstance(record, Emit):
            self.emit(record)
        elif isinstance(record, MembershipChange):
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
        """Encoded once for the whole audience; an offset travels as the last argument (the
        Socket.IO connection-state-recovery convention)."""
        rooms, skip = rooms_of(record.audience)
        if record.offset is None or not self.with_offsets:
            args: tuple = (record.payload,)
        else:
            args = (record.payload, record.offset)
        return self.server.emit(CHAT, record.event, *args, room=rooms, skip_sid=skip)


def rooms_of(audience: Audience) -> tuple[list[str], set[str]]:
    """(rooms to reach, rooms to skip); a socket id is a room holding that one socket."""
    rooms = [user_room(u) for u in audience.users] + [group_room(g) for g in audience.groups]
    skip = {user_room(u) for u in audience.except_users}
    if audience.except_socket is not None:
        skip.add(audience.except_socket)
    return rooms, skip
