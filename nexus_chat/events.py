"""The events port: how the domain tells connected clients what happened.

Services decide *what* happened and *who* must hear of it; the socket layer only delivers.
After the change is committed a service publishes on the context's port::

    await ctx.events.publish("message", shaped, Audience.to_group(group_id))
    await ctx.events.publish("message", shaped,
                             Audience.to_conversation(sender_id, recipient_id, except_socket=sid))
    await ctx.events.publish("userStatusChanged", payload, Audience.to_users(ids), volatile=True)

and reports live membership changes the same way (they move sockets between rooms and keep
the chat cache in step; clients receive nothing for them)::

    await ctx.events.join_group(group_id, user_ids)
    await ctx.events.leave_group(group_id, user_ids)
    await ctx.events.group_deleted(group_id)
    await ctx.events.user_deleted(user_id)          # disconnects the user's sockets

Inside a transaction, ``ctx.events.after_commit()`` collects records and publishes them, in
order, once the block has completed (nothing is published when it raises)::

    async with ctx.events.after_commit() as outbox, ctx.db.transaction() as tx:
        ...
        outbox.publish("messageEdited", payload, Audience.to_group(group_id))

Each call builds one immutable record (`Emit`, `MembershipChange`, `GroupDeleted`,
`UserDeleted`) and sends it down one pipeline, in publish order::

    publish ─▶ stage 1 ─▶ … ─▶ stage n ─▶ deliver ─▶ listeners (chat cache, socket delivery)

*Stages* (``add_stage``) sit between publishing and delivery: ``async stage(record)`` returns
the record to pass on (possibly replaced, e.g. an `Emit` with its ``offset`` set by an event
log that persists non-volatile events), or None to stop it here (e.g. a Redis adapter that
publishes to every process and delivers what it receives back through ``deliver``).
*Listeners* (``subscribe``) are the local consumers, called synchronously in subscription
order: a record reaches the chat cache and the sockets with no await in between.

``volatile`` marks events that are worth nothing later (typing, presence): they are never
stored or replayed. Publishing never raises: the change is committed and its caller must
still succeed; a failing stage or listener is logged.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, Union

log = logging.getLogger("nexus_chat.events")


@dataclass(frozen=True)
class Audience:
    """Who receives an event: every connection of ``users`` and of the members of
    ``groups``, except the connections of ``except_users`` and the one ``except_socket``
    (the connection a request came from, which gets its answer as the ack)."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    except_users: frozenset[str] = frozenset()
    except_socket: str | None = None

    @classmethod
    def to_user(cls, user_id: str, *, except_socket: str | None = None) -> Audience:
        return cls(users=frozenset((user_id,)), except_socket=except_socket)

    @classmethod
    def to_users(cls, user_ids: Iterable[str], *, except_socket: str | None = None) -> Audience:
        return cls(users=frozenset(user_ids), except_socket=except_socket)

    @classmethod
    def to_group(cls, group_id: str, *, except_users: Iterable[str] = (),
                 except_socket: str | None = None) -> Audience:
        return cls(groups=frozenset((group_id,)), except_users=frozenset(except_users),
                   except_socket=except_socket)

    @classmethod
    def to_conversation(cls, user_a: str, user_b: str, *, except_socket: str | None = None) -> Audience:
        """Both participants of a 1-on-1 conversation (each on all their connections)."""
        return cls(users=frozenset((user_a, user_b)), except_socket=except_socket)


@dataclass(frozen=True)
class Emit:
    """An event for clients: ``event`` with ``payload`` to ``audience``."""

    event: str
    payload: dict[str, Any]
    audience: Audience
    volatile: bool = False
    offset: str | None = None    # set by a stage that logs events for replay
    writer: int | None = None    # the event-log writer that gave the offset (offsets.py)


@dataclass(frozen=True)
class MembershipChange:
    """``user_ids`` joined (or left) ``group_id``: their connections join (leave) its room."""

    group_id: str
    user_ids: tuple[str, ...]
    joined: bool


@dataclass(frozen=True)
class GroupDeleted:
    group_id: str


@dataclass(frozen=True)
class UserDeleted:
    """The account is gone: its connections are closed."""

    user_id: str


Record = Union[Emit, MembershipChange, GroupDeleted, UserDeleted]
Stage = Callable[[Record], Awaitable["Record | None"]]
Listener = Callable[[Record], None]


Result = TypeVar("Result")


class _Publishing(Generic[Result]):
    """The record-building calls, shared by `Events` (each returns an awaitable that
    publishes at once) and the `Deferred` outbox (each queues and returns None)."""

    def _put(self, record: Record) -> Result:
        raise NotImplementedError

    def publish(self, event: str, payload: dict[str, Any], audience: Audience, *,
                volatile: bool = False) -> Result:
        return self._put(Emit(event, payload, audience, volatile))

    def join_group(self, group_id: str, user_ids: Iterable[str]) -> Result:
        return self._put(MembershipChange(group_id, tuple(user_ids), True))

    def leave_group(self, group_id: str, user_ids: Iterable[str]) -> Result:
        return self._put(MembershipChange(group_id, tuple(user_ids), False))

    def group_deleted(self, group_id: str) -> Result:
        return self._put(GroupDeleted(group_id))

    def user_deleted(self, user_id: str) -> Result:
        return self._put(UserDeleted(user_id))


class Deferred(_Publishing[None]):
    """Records collected inside a transaction; `Events.after_commit` publishes them."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def _put(self, record: Record) -> None:
        self.records.append(record)


class Events(_Publishing[Awaitable[None]]):
    """The port on the context (``ctx.events``). With no listener, records go nowhere
    (a process without sockets)."""

    def __init__(self) -> None:
        self._stages: list[Stage] = []
        self._listeners: list[Listener] = []

    def add_stage(self, stage: Stage) -> None:
        """Appends a stage between publishing and delivery (event log, Redis adapter)."""
        self._stages.append(stage)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def _put(self, record: Record) -> Awaitable[None]:
        return self._dispatch(record)

    async def _dispatch(self, record: Record) -> None:
        for stage in self._stages:
            try:
                passed = await stage(record)
            except Exception:
                log.exception("event stage %r failed on %r", stage, record)
                continue
            if passed is None:
                return
            record = passed
        self.deliver(record)

    def deliver(self, record: Record) -> None:
        """Hands a record to the local listeners (also the way in for records that a
        stage received from elsewhere, e.g. another process)."""
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:
                log.exception("event listener %r failed on %r", listener, record)

    @contextlib.asynccontextmanager
    async def after_commit(self) -> AsyncIterator[Deferred]:
        """Collects records in the block; publishes them in order if it completes."""
        outbox = Deferred()
        yield outbox
        for record in outbox.records:
            await self._dispatch(record)


def with_offset(record: Emit, offset: str, writer: int | None = None) -> Emit:
    """The same event carrying its place in the event log (offset, and the writer's id)."""
    return dataclasses.replace(record, offset=offset, writer=writer)


