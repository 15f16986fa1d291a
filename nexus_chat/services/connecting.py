"""What a /chat CONNECT reads from the database (docs/realtime.md#connecting-to-chat), in one round
trip per batch of concurrent connects instead of two per connect.

A CONNECT needs two facts: the account still exists (a connection lives for hours and stores
presence, so not only as far as this process knows) and the groups the user belongs to
(their rooms). Both come from one query (``users_with_groups``), and the CONNECTs that arrive
while one such read is in flight are read together by the next (``Coalescer``). The groups
are current when they are used: if a membership changed anywhere since the read began
(``ChatCache.generation`` moved), they are read again.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..coalesce import Coalescer
from ..context import AppContext
from ..errors import unauthorized
from ..queries import users
from ..tokens import Claims
from .auth import authenticate
from .chat import group_ids as read_group_ids


@dataclass(frozen=True, slots=True)
class Account:
    """A connecting user as one read found them."""
    group_ids: tuple[str, ...]
    generation: int   # ChatCache.generation when the read began


class ConnectReads:
    """Per process (the /chat namespace holds one)."""

    def __init__(self, ctx: AppContext, max_batch: int = 500) -> None:
        self.ctx = ctx
        self.accounts: Coalescer[str, Account] = Coalescer(self._read, max_batch)

    async def _read(self, user_ids: list[str]) -> dict[str, Account]:
        generation = self.ctx.chat_cache.generation
        found: dict[str, list[str]] = {}
        for row in await users.users_with_groups(self.ctx.db, user_ids):
            groups = found.setdefault(row["user_id"], [])
            if row["group_id"] is not None:
                groups.append(row["group_id"])
        return {user_id: Account(tuple(groups), generation) for user_id, groups in found.items()}

    async def authenticate(self, token: str | None) -> tuple[Claims, Account]:
        """The handshake's access check (``auth.authenticate``) and the account, read now;
        ApiError 401 when the token is bad or the account is gone."""
        claims = authenticate(self.ctx, token)
        account = await self.accounts.get(claims.sub)
        if account is None:
            raise unauthorized()
        return claims, account

    async def group_ids(self, user_id: str, account: Account) -> list[str]:
        """The user's groups, current when this returns (no await may follow before the
        caller joins their rooms): those of ``account`` if no membership changed since it
        was read, else read again."""
        cache = self.ctx.chat_cache
        if account.generation != cache.generation:
            return await read_group_ids(self.ctx, user_id)
        for group_id in account.group_ids:
            cache.remember_member(group_id, user_id, True, account.generation)
        return list(account.group_ids)
