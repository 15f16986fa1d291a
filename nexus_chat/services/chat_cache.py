"""In-memory caches of the chat services, kept in step by the membership events they
receive from the events port (``ChatCache.on_record``)."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Hashable
from ..db import Row
from ..events import GroupDeleted, MembershipChange, Record, UserDeleted


class KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, list] = {}   # key -> [lock, users]

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]


class ChatCache:
    """What a message send would otherwise look up every time: the conversation of a user
    pair, its participants, group membership, and (briefly) the sender's public profile.

    Membership changes arrive as records of the events port (invite, kick, leave, group and
    account deletion), before the sockets see them. ``generation`` moves on each of them: a value read from the database
    is only remembered if no change happened while it was being read.
    """

    MAX_ENTRIES = 200_000
    PROFILE_TTL_S = 2.0

    def __init__(self) -> None:
        self.generation = 0
        self.locks = KeyedLocks()
        self._pairs: dict[tuple[str, str], str] = {}
        self._participants: dict[str, tuple[str, str]] = {}
        self._members: dict[str, dict[str, bool]] = {}     # group -> user -> member?
        self._member_entries = 0
        self._profiles: dict[str, tuple[float, Row]] = {}

    def on_record(self, record: Record) -> None:
        """Listener on ``ctx.events``."""
        if isinstance(record, MembershipChange):
            self.members_changed(record.group_id, list(record.user_ids), record.joined)
        elif isinstance(record, GroupDeleted):
            self.group_gone(record.group_id)
        elif isinstance(record, UserDeleted):
            self.user_gone(record.user_id)

    def clear(self) -> None:
        """Forget everything (changes made elsewhere may have been missed)."""
        self.generation += 1
        self._pairs.clear()
        self._participants.clear()
        self._members.clear()
        self._member_entries = 0
        self._profiles.clear()

    # conversations
    def conversation(self, low: str, high: str) -> str | None:
        return self._pairs.get((low, high))

    def participants(self, conversation_id: str) -> tuple[str, str] | None:
        return self._participants.get(conversation_id)

    def remember_conversation(self, conversation_id: str, low: str, high: str, generation: int) -> None:
        if generation != self.generation:
            return
        if len(self._pairs) >= self.MAX_ENTRIES:
            self._pairs.clear()
            self._participants.clear()
        self._pairs[(low, high)] = conversation_id
        self._participants[conversation_id] = (low, high)

    # membership
    def is_member(self, group_id: str, user_id: str) -> bool | None:
        return self._members.get(group_id, {}).get(user_id)

    def remember_member(self, group_id: str, user_id: str, member: bool, generation: int) -> None:
        if generation == self.generation:
            self._set_member(group_id, user_id, member)

    def _set_member(self, group_id: str, user_id: str, member: bool) -> None:
        if self._member_entries >= self.MAX_ENTRIES:
            self._members.clear()
            self._member_entries = 0
        users = self._members.setdefault(group_id, {})
        if user_id not in users:
            self._member_entries += 1
        users[user_id] = member

    def members_changed(self, group_id: str, user_ids: list[str], member: bool) -> None:
        self.generation += 1
        for user_id in user_ids:
            self._set_member(group_id, user_id, member)

    def group_gone(self, group_id: str) -> None:
        self.generation += 1
        self._member_entries -= len(self._members.pop(group_id, {}))

    def user_gone(self, user_id: str) -> None:
        self.generation += 1
        for users in self._members.values():
            if users.pop(user_id, None) is not None:
                self._member_entries -= 1
        for pair in [p for p in self._pairs if user_id in p]:
            self._participants.pop(self._pairs.pop(pair), None)
        self._profiles.pop(user_id, None)

    # profiles
    def profile(self, user_id: str) -> Row | None:
        entry = self._profiles.get(user_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def remember_profile(self, user_id: str, row: Row) -> None:
        if len(self._profiles) >= self.MAX_ENTRIES:
            self._profiles.clear()
        self._profiles[user_id] = (time.monotonic() + self.PROFILE_TTL_S, row)

    def forget_profile(self, user_id: str) -> None:
        self._profiles.pop(user_id, None)
