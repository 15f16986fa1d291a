"""sql/009_search_scope.sql applies to a database holding the previous version's messages:
each gets the scope word of its conversation or group, and the rebuilt full-text index finds
the old messages with a scope-first query (and matches nothing elsewhere)."""
from __future__ import annotations

import datetime as dt
import uuid

from nexus_chat.searchtext import scope_token

from .support import EarlierSchema

SCOPE = "009_search_scope.sql"


def test_old_messages_get_their_scope_word_and_are_found(db_server, tmp_path):
    now = dt.datetime(2026, 11, 1, 12, 0, 0)
    with EarlierSchema(db_server, tmp_path, 9) as schema:
        before, conn = schema.applied, schema.conn
        assert SCOPE not in before and before
        ids = {key: str(uuid.uuid4()) for key in ("a", "b", "c", "conv", "other", "group")}
        with conn.cursor() as cur:
            for key in ("a", "b", "c"):
                cur.execute("INSERT INTO users (id, username, full_name, email, password_hash, created_at,"
                            " updated_at) VALUES (%s, %s, %s, %s, 'x', %s, %s)",
                            (ids[key], key + ids[key][:8], key, f"{key}{ids[key][:8]}@example.test", now, now))
            for conv, (x, y) in (("conv", ("a", "b")), ("other", ("b", "c"))):
                low, high = sorted((ids[x], ids[y]))
                cur.execute("INSERT INTO conversations (id, creator_id, recipient_id, user_low_id, user_high_id,"
                            " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            (ids[conv], ids[x], ids[y], low, high, now, now))
            cur.execute("INSERT INTO chat_groups (id, name, owner_id, created_at, updated_at)"
                        " VALUES (%s, 'g', %s, %s, %s)", (ids["group"], ids["a"], now, now))
            for conv, group, text in ((ids["conv"], None, "harvest moon"), (ids["other"], None, "harvest sun"),
                                      (None, ids["group"], "harvest party")):
                cur.execute("INSERT INTO messages (id, conversation_id, group_id, sender_id, content, created_at,"
                            " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            (str(uuid.uuid4()), conv, group, ids["b"], text, now, now))
        after = schema.upgrade()
        assert SCOPE in after
        with conn.cursor() as cur:
            cur.execute("SELECT content, search_scope FROM messages ORDER BY seq")
            assert cur.fetchall() == (("harvest moon", scope_token(ids["conv"], None)),
                                      ("harvest sun", scope_token(ids["other"], None)),
                                      ("harvest party", scope_token(None, ids["group"])))
            query = f'+"harvest" +({scope_token(ids["conv"], None)} {scope_token(None, ids["group"])})'
            cur.execute("SELECT content FROM messages WHERE MATCH (content, search_scope)"
                        " AGAINST (%s IN BOOLEAN MODE) ORDER BY seq", (query,))
            assert cur.fetchall() == (("harvest moon",), ("harvest party",))
