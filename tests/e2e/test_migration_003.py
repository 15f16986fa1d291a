"""sql/003_message_lifecycle.sql applies to a database that already holds data of the previous
version: messages keep their content and read state, read pointers are seeded from it."""
from __future__ import annotations

import datetime as dt
import uuid

import pymysql

from .support import EarlierSchema

LIFECYCLE = "003_message_lifecycle.sql"


def _seed(cur) -> dict:
    """Users, a 1-on-1 conversation partly read, a group with messages: the old way."""
    now = dt.datetime(2026, 1, 2, 3, 4, 5)
    ids = {name: str(uuid.uuid4()) for name in ("a", "b", "c", "conv", "group")}
    for name in ("a", "b", "c"):
        cur.execute("INSERT INTO users (id, username, full_name, email, password_hash, created_at, updated_at)"
                    " VALUES (%s, %s, %s, %s, 'x', %s, %s)",
                    (ids[name], f"{name}_{ids[name][:8]}", name.upper(), f"{name}.{ids[name][:8]}@example.test",
                     now, now))
    low, high = sorted((ids["a"], ids["b"]))
    cur.execute("INSERT INTO conversations (id, creator_id, recipient_id, user_low_id, user_high_id, created_at,"
                " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (ids["conv"], ids["a"], ids["b"], low, high, now, now))
    # a -> b: three messages, the first two read by b; b -> a: one message, unread
    seqs = []
    for i, (sender, read) in enumerate([("a", 1), ("a", 1), ("a", 0), ("b", 0)]):
        message_id = str(uuid.uuid4())
        cur.execute("INSERT INTO messages (id, conversation_id, sender_id, content, is_read, read_at, created_at,"
                    " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (message_id, ids["conv"], ids[sender], f"m{i}", read, now if read else None, now, now))
        cur.execute("SELECT seq FROM messages WHERE id = %s", (message_id,))
        seqs.append(cur.fetchone()[0])
    cur.execute("INSERT INTO chat_groups (id, name, owner_id, created_at, updated_at) VALUES (%s, 'g', %s, %s, %s)",
                (ids["group"], ids["a"], now, now))
    for name, role in (("a", "owner"), ("c", "member")):
        cur.execute("INSERT INTO group_members (group_id, user_id, role, joined_at) VALUES (%s, %s, %s, %s)",
                    (ids["group"], ids[name], role, now))
    for i in range(2):
        cur.execute("INSERT INTO messages (id, group_id, sender_id, content, created_at, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s)", (str(uuid.uuid4()), ids["group"], ids["c"], f"g{i}", now, now))
    cur.execute("SELECT MAX(seq) FROM messages WHERE group_id = %s", (ids["group"],))
    ids["group_last"] = cur.fetchone()[0]
    ids["seqs"] = seqs
    return ids


def test_applies_on_top_of_the_previous_versions_data(db_server, tmp_path):
    with EarlierSchema(db_server, tmp_path, 3) as schema:
        before, conn = schema.applied, schema.conn
        assert LIFECYCLE not in before and before
        with conn.cursor() as cur:
            ids = _seed(cur)
        after = schema.upgrade()
        assert LIFECYCLE in after
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SELECT content, is_read, edited_at, deleted_at, deleted_by, reply_to_id FROM messages"
                        " WHERE conversation_id = %s ORDER BY seq", (ids["conv"],))
            rows = cur.fetchall()
            assert [(r["content"], r["is_read"]) for r in rows] == [("m0", 1), ("m1", 1), ("m2", 0), ("m3", 0)]
            assert all(r["edited_at"] is None and r["deleted_at"] is None and r["deleted_by"] is None
                       and r["reply_to_id"] is None for r in rows)
            cur.execute("SELECT chat_id, user_id, conversation_id, group_id, last_read_seq FROM read_pointers"
                        " ORDER BY chat_id, user_id")
            pointers = {(p["chat_id"], p["user_id"]): p for p in cur.fetchall()}
            # b had read a's first two messages; a had read nothing of b's
            assert pointers[(ids["conv"], ids["b"])]["last_read_seq"] == ids["seqs"][1]
            assert pointers[(ids["conv"], ids["b"])]["conversation_id"] == ids["conv"]
            assert (ids["conv"], ids["a"]) not in pointers
            # group history counts as read for its members
            for member in ("a", "c"):
                pointer = pointers[(ids["group"], ids[member])]
                assert pointer["last_read_seq"] == ids["group_last"] and pointer["group_id"] == ids["group"]
            assert len(pointers) == 3
            cur.execute("SELECT COUNT(*) AS n FROM users WHERE send_read_receipts = 1")
            assert cur.fetchone()["n"] == 3
