"""sql/011_cluster_offsets.sql applies to a database that already holds events and kept
recovery sessions: the events stay readable (by no writer: the REST catch-up from a number
still reads them, and a position owes them by time), and the sessions have no position, so
they are not recovered (nexus_chat/offsets.Position.parse(None) is None)."""
from __future__ import annotations

import datetime as dt
import uuid

from nexus_chat.offsets import Position

from .support import EarlierSchema

OFFSETS = "011_cluster_offsets.sql"


def test_events_and_sessions_of_the_previous_version_survive(db_server, tmp_path):
    with EarlierSchema(db_server, tmp_path, 11) as schema:
        before, conn = schema.applied, schema.conn
        assert OFFSETS not in before and before
        t0 = dt.datetime(2026, 1, 2, 3, 4, 5)
        uid = str(uuid.uuid4())
        with conn.cursor() as cur:
            cur.execute("INSERT INTO users (id, username, full_name, email, password_hash, created_at,"
                        " updated_at) VALUES (%s, %s, 'U', %s, 'x', %s, %s)",
                        (uid, f"u_{uid[:12]}", f"{uid}@example.test", t0, t0))
            cur.execute("INSERT INTO event_log (event, payload, created_at) VALUES ('message', '{}', %s)", (t0,))
            offset = cur.lastrowid
            cur.execute("INSERT INTO event_log_targets (`offset`, kind, target_id) VALUES (%s, 'u', %s)",
                        (offset, uid))
            cur.execute("INSERT INTO recovery_sessions (pid_hash, sid, user_id, base_offset, expires_at)"
                        " VALUES (%s, 'sid', %s, %s, %s)", ("a" * 64, uid, offset, t0))
        after = schema.upgrade()
        assert after == [OFFSETS] or OFFSETS in after
        with conn.cursor() as cur:
            cur.execute("SELECT `offset`, writer, event FROM event_log")
            assert cur.fetchall() == ((offset, None, "message"),)
            cur.execute("SELECT base_offset, base_position FROM recovery_sessions")
            [(base_offset, base_position)] = cur.fetchall()
            cur.execute("INSERT INTO event_writers (started_at) VALUES (%s)", (t0,))
            assert cur.lastrowid >= 1
        assert base_offset == offset and Position.parse(base_position) is None    # not recovered
