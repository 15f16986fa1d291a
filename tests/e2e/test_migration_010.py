"""sql/010_history_page.sql applies to a database that already holds reactions and
attachments: each message's reaction summary is built from the stored reactions (emoji in
first-use order, the first ten users), and messages with attachments are marked so."""
from __future__ import annotations

import datetime as dt
import json
import uuid

from .support import EarlierSchema, seed_users_and_conversation

SUMMARY = "010_history_page.sql"
THUMBS, HEART = "\U0001F44D", "\u2764\uFE0F"


def test_summaries_are_built_from_the_stored_reactions(db_server, tmp_path):
    with EarlierSchema(db_server, tmp_path, 10) as schema:
        before, conn = schema.applied, schema.conn
        assert SUMMARY not in before and before
        t0 = dt.datetime(2026, 1, 2, 3, 4, 5)
        with conn.cursor() as cur:
            users, conv = seed_users_and_conversation(cur, t0)
            low = users[0]
            seqs, message_ids = [], []
            for i in range(2):
                message_ids.append(str(uuid.uuid4()))
                cur.execute("INSERT INTO messages (id, conversation_id, sender_id, content, created_at, updated_at)"
                            " VALUES (%s, %s, %s, %s, %s, %s)", (message_ids[-1], conv, low, f"m{i}", t0, t0))
                seqs.append(cur.lastrowid)
            cur.execute("INSERT INTO attachments (id, uploader_id, message_id, kind, mime_type, size, name,"
                        " created_at) VALUES (%s, %s, %s, 'file', 'application/pdf', 10, 'a.pdf', %s)",
                        (str(uuid.uuid4()), low, message_ids[1], t0))
            # message 0: a heart first, then eleven thumbs (users in reverse order of id)
            reactions = [(seqs[0], HEART, users[5], t0)]
            thumbs = list(reversed(users[1:]))
            reactions += [(seqs[0], THUMBS, uid, t0 + dt.timedelta(seconds=1 + i)) for i, uid in enumerate(thumbs)]
            cur.executemany("INSERT INTO message_reactions (message_seq, emoji, user_id, created_at)"
                            " VALUES (%s, %s, %s, %s)", reactions)
        # 010 alone: 013 rewrites the summaries into another form (test_migration_013.py)
        after = schema.upgrade(below=11)
        assert after == [SUMMARY]
        with conn.cursor() as cur:
            cur.execute("SELECT seq, reactions_summary FROM messages ORDER BY seq")
            summaries = dict(cur.fetchall())
            cur.execute("SELECT seq, has_attachments FROM messages ORDER BY seq")
            assert dict(cur.fetchall()) == {seqs[0]: 0, seqs[1]: 1}
        assert summaries[seqs[1]] is None                 # no reactions, no summary
        heart, thumb = json.loads(summaries[seqs[0]])
        assert heart[:3] == [HEART, 1, users[5]]
        assert thumb[:3] == [THUMBS, 11, ",".join(thumbs[:10])]   # the first ten, oldest first
        assert heart[3] < thumb[3]
