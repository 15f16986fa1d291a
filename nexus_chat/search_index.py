"""Where message search runs: a small interface, and the MariaDB/MySQL FULLTEXT index that
implements it. Another engine (an external search service) replaces ``FulltextIndex`` by
implementing ``MessageIndex``; the rules of who may find what stay in services/search.py
and are passed in as the scope.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .db import Executor, Row
from .queries import search as search_queries
from .searchtext import SearchTerms, boolean_query, scope_token, scope_query_fits, scoped_query, search_terms


# Matches counted before choosing a plan; 1,000,000 messages, 2-core box: a rare word (a few
# matches) ~10 ms checked directly against ~100-200 ms with the scope clause of 50
# conversations; a word in 1 % of messages ~3 s directly against ~0.5 s scope first.
RARE_MATCHES = 200


@dataclass(frozen=True)
class Scope:
    """Whose messages to search: all of the user's conversations and current groups, or one
    conversation (already checked to be the user's) or one group."""
    user_id: str
    conversation_id: str | None = None
    group_id: str | None = None


class MessageIndex(Protocol):
    async def terms(self, db: Executor, text: str) -> SearchTerms:
        """What of ``text`` this engine can look for."""

    async def search(self, db: Executor, scope: Scope, terms: SearchTerms, *,
                     before_seq: int | None, limit: int) -> list[Row]:
        """Matching messages in scope, newest (highest seq) first, at most ``limit``, as rows
        of queries.search (message columns, the group's name, the 1-on-1 partner)."""


class FulltextIndex:
    """InnoDB FULLTEXT in boolean mode. Words shorter than the server's
    innodb_ft_min_token_size and its stopwords are not in the index, so they are dropped from
    the query instead of making it match nothing."""

    def __init__(self) -> None:
        self._min_chars: int | None = None
        self._stopwords: frozenset[str] = frozenset()

    async def _load_settings(self, db: Executor) -> None:
        row = await search_queries.index_settings(db)
        stopwords = await search_queries.default_stopwords(db) if row and row["stopwords_enabled"] else []
        self._stopwords = frozenset(word.casefold() for word in stopwords)
        self._min_chars = int(row["min_token_size"]) if row else 3

    async def terms(self, db: Executor, text: str) -> SearchTerms:
        if self._min_chars is None:
            await self._load_settings(db)
        return search_terms(text, min_word_chars=self._min_chars or 3, stopwords=self._stopwords)

    async def search(self, db: Executor, scope: Scope, terms: SearchTerms, *,
                     before_seq: int | None, limit: int) -> list[Row]:
        """The plan by how common the term is. A rare one (at most RARE_MATCHES matches in
        the whole database, counted with a LIMIT): its matches are checked directly. Any
        other: scope first, the query also requires the scope word of one of the user's
        conversations or groups, so InnoDB intersects the term's matches with the user's
        messages inside the index and reads only those rows (without it, a common word made
        it read every match in the database, 1 % of a million messages: ~10,000 rows, and
        throw away the others' afterwards). Past MAX_SCOPE_TOKENS the scope clause is left
        out (the query would get long). Every plan checks membership in SQL itself."""
        if scope.conversation_id is not None:
            query = scoped_query(terms, [scope_token(scope.conversation_id, None)])
            return await search_queries.search_conversation(db, scope.user_id, scope.conversation_id, query,
                                                            before_seq=before_seq, limit=limit)
        if scope.group_id is not None:
            query = scoped_query(terms, [scope_token(None, scope.group_id)])
            return await search_queries.search_group(db, scope.user_id, scope.group_id, query,
                                                     before_seq=before_seq, limit=limit)
        plain = boolean_query(terms)
        # A rare term: all its matches are few, and checking them is cheaper than the scope
        # clause (which reads the user's whole scope out of the index).
        matches = await search_queries.matches_anywhere(db, plain, RARE_MATCHES + 1)
        if len(matches) <= RARE_MATCHES:
            return await search_queries.search_among(db, scope.user_id, matches, before_seq=before_seq,
                                                     limit=limit)
        conversations, groups = await search_queries.scope_ids(db, scope.user_id)
        if not conversations and not groups:
            return []
        tokens = [scope_token(c, None) for c in conversations] + [scope_token(None, g) for g in groups]
        query = scoped_query(terms, tokens) if scope_query_fits(tokens) else plain
        return await search_queries.search_everywhere(db, scope.user_id, query, before_seq=before_seq, limit=limit)
