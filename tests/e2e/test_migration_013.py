"""sql/013_reactions_wire.sql applies to a database whose messages carry 010's reaction
summaries: each becomes the message's Reactions as the API answers them to someone who did not
react (emoji in first-use order, the first ten users, oldest first), rebuilt from the stored
reactions; a message without reactions keeps none. History then answers with them."""
from __future__ import annotations

import datetime as dt
import json
import uuid

from .support import EarlierSchema, seed_users_and_conversation

WIRE = "013_reactions_wire.sql"
THUMBS, HEART = "\U0001F44D", "\u2764\uFE0F"


def test_summaries_become_the_answers_reactions(db_server, tmp_path):
    with EarlierSchema(db_server, tmp_path, 13) as schema:
        before, conn = schema.applied, schema.conn
        assert WIRE not in before and "010_history_page.sql" in before
        t0 = dt.datetime(2026, 1, 2, 3, 4, 5)
        with conn.cursor() as cur:
            users, conv = seed_users_and_conversation(cur, t0)
            low = users[0]
            seqs = []
            for i in range(2):
                cur.execute("INSERT INTO messages (id, conversation_id, sender_id, content, created_at, updated_at)"
                            " VALUES (%s, %s, %s, %s, %s, %s)", (str(uuid.uuid4()), conv, low, f"m{i}", t0, t0))
                seqs.append(cur.lastrowid)
            # message 0: eleven thumbs (users in reverse order of id), then a heart; 010's
            # summary of them, as the previous version left it
            thumbs = list(reversed(users[1:]))
            reactions = [(seqs[0], THUMBS, uid, t0 + dt.timedelta(seconds=i)) for i, uid in enumerate(thumbs)]
            reactions.append((seqs[0], HEART, users[5], t0 + dt.timedelta(seconds=30)))
            cur.executemany("INSERT INTO message_reactions (message_seq, emoji, user_id, created_at)"
                            " VALUES (%s, %s, %s, %s)", reactions)
            old = [[THUMBS, 11, ",".join(thumbs[:10]), "2026-01-02 03:04:05.000"],
                   [HEART, 1, users[5], "2026-01-02 03:04:35.000"]]
            cur.execute("UPDATE messages SET reactions_summary = %s WHERE seq = %s", (json.dumps(old), seqs[0]))
        after = schema.upgrade()
        assert WIRE in after
        with conn.cursor() as cur:
            cur.execute("SELECT seq, reactions_summary FROM messages ORDER BY seq")
            summaries = dict(cur.fetchall())
        assert summaries[seqs[1]] is None                 # no reactions, no summary
        assert json.loads(summaries[seqs[0]]) == [
            {"emoji": THUMBS, "count": 11, "userIds": thumbs[:10], "reactedByMe": False},   # the first ten, oldest first
            {"emoji": HEART, "count": 1, "userIds": [users[5]], "reactedByMe": False}]
