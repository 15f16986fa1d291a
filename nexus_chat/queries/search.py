"""Message search SQL (the MariaDB/MySQL FULLTEXT backend of services/search.py).

Scope is decided here, in the same statement as the match, so that no hit can come from a
conversation the user is not part of or a group they are not a member of *now*.
"""
from __future__ import annotations

from ..db import Executor, Row
from .chat import MESSAGE_COLUMNS, MESSAGE_FROM

_HIT_COLUMNS = (
    MESSAGE_COLUMNS + ", g.name AS group_name, g.icon_url AS group_icon_url,"
    " p.id AS partner_id, p.username AS partner_username, p.full_name AS partner_full_name,"
    " p.avatar_url AS partner_avatar_url, p.bio AS partner_bio, p.status AS partner_status,"
    " CAST(p.last_seen_at AS CHAR) AS partner_last_seen_at")
_HIT_FROM = (
    MESSAGE_FROM
    + " LEFT JOIN chat_groups g ON g.id = m.group_id"
    " LEFT JOIN conversations c ON c.id = m.conversation_id"
    " LEFT JOIN users p ON p.id = IF(c.user_low_id = %(me)s, c.user_high_id, c.user_low_id)")
# A tombstone's content is emptied, so it leaves the index too; the deleted_at test keeps a
# deleted message out even before the index has caught up.
# The index covers the text and the message's scope word (sql/009_search_scope.sql).
_MATCH = "MATCH (m.content, m.search_scope) AGAINST (%(query)s IN BOOLEAN MODE) AND m.deleted_at IS NULL"
_BEFORE = "(%(before_seq)s IS NULL OR m.seq < %(before_seq)s)"
# In one of the user's 1-on-1 conversations or a group they are a member of now.
_MEMBER = ("(m.conversation_id IN (SELECT id FROM conversations WHERE user_low_id = %(me)s"
           "                       UNION SELECT id FROM conversations WHERE user_high_id = %(me)s)"
           " OR m.group_id IN (SELECT group_id FROM group_members WHERE user_id = %(me)s))")


async def index_settings(db: Executor) -> Row:
    """What the server indexes: the shortest word and whether stopwords are left out."""
    return await db.fetch_one(
        "SELECT @@innodb_ft_min_token_size AS min_token_size,"
        " @@innodb_ft_enable_stopword AS stopwords_enabled")


async def default_stopwords(db: Executor) -> list[str]:
    rows = await db.fetch_all("SELECT value FROM information_schema.INNODB_FT_DEFAULT_STOPWORD")
    return [row["value"] for row in rows]


async def scope_ids(db: Executor, user_id: str) -> tuple[list[str], list[str]]:
    """The ids of the user's 1-on-1 conversations and of the groups they are a member of now."""
    rows = await db.fetch_all(
        "SELECT 'c' AS kind, id FROM conversations WHERE user_low_id = %(me)s"
        " UNION ALL SELECT 'c', id FROM conversations WHERE user_high_id = %(me)s"
        " UNION ALL SELECT 'g', group_id FROM group_members WHERE user_id = %(me)s", {"me": user_id})
    return ([row["id"] for row in rows if row["kind"] == "c"],
            [row["id"] for row in rows if row["kind"] == "g"])


async def matches_anywhere(db: Executor, query: str, limit: int) -> list[int]:
    """Up to ``limit`` seqs of live messages matching ``query``, in anyone's conversations:
    how common a term is (search_index), never shown as such. InnoDB stops reading rows at
    the limit."""
    rows = await db.fetch_all(
        f"SELECT m.seq FROM messages m WHERE {_MATCH} LIMIT %(limit)s", {"query": query, "limit": limit})
    return [int(row["seq"]) for row in rows]


async def search_among(db: Executor, user_id: str, seqs: list[int], *, before_seq: int | None,
                       limit: int) -> list[Row]:
    """Of the messages ``seqs`` (matches of the query), those in the user's 1-on-1
    conversations and current groups, live, newest first."""
    if not seqs:
        return []
    return await db.fetch_all(
        f"SELECT {_HIT_COLUMNS} {_HIT_FROM}"
        f" WHERE m.seq IN %(seqs)s AND m.deleted_at IS NULL AND {_BEFORE} AND {_MEMBER}"
        " ORDER BY m.seq DESC LIMIT %(limit)s",
        {"me": user_id, "seqs": seqs, "before_seq": before_seq, "limit": limit})


async def search_everywhere(db: Executor, user_id: str, query: str, *, before_seq: int | None,
                            limit: int) -> list[Row]:
    """Matches in the user's 1-on-1 conversations and current groups, newest first."""
    return await db.fetch_all(
        f"SELECT {_HIT_COLUMNS} {_HIT_FROM}"
        f" WHERE {_MATCH} AND {_BEFORE} AND {_MEMBER}"
        " ORDER BY m.seq DESC LIMIT %(limit)s",
        {"me": user_id, "query": query, "before_seq": before_seq, "limit": limit})


async def search_conversation(db: Executor, user_id: str, conversation_id: str, query: str, *,
                              before_seq: int | None, limit: int) -> list[Row]:
    """Matches in one 1-on-1 conversation of the user, newest first."""
    return await db.fetch_all(
        f"SELECT {_HIT_COLUMNS} {_HIT_FROM}"
        f" WHERE {_MATCH} AND {_BEFORE} AND m.conversation_id = %(conversation)s"
        "   AND (c.user_low_id = %(me)s OR c.user_high_id = %(me)s)"
        " ORDER BY m.seq DESC LIMIT %(limit)s",
        {"me": user_id, "conversation": conversation_id, "query": query, "before_seq": before_seq,
         "limit": limit})


async def search_group(db: Executor, user_id: str, group_id: str, query: str, *,
                       before_seq: int | None, limit: int) -> list[Row]:
    """Matches in one group the user is a member of now, newest first."""
    return await db.fetch_all(
        f"SELECT {_HIT_COLUMNS} {_HIT_FROM}"
        f" WHERE {_MATCH} AND {_BEFORE} AND m.group_id = %(group)s"
        "   AND EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = %(group)s"
        "               AND gm.user_id = %(me)s)"
        " ORDER BY m.seq DESC LIMIT %(limit)s",
        {"me": user_id, "group": group_id, "query": query, "before_seq": before_seq,
         "limit": limit})
