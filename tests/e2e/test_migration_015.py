"""sql/015_event_log_writer_index.sql applies to an event log holding events of several writers
(and of the version before writers, writer NULL): nothing is lost, and each writer's first
event after an offset is then one seek in the new index."""
from __future__ import annotations

import datetime as dt

from .support import EarlierSchema

INDEX = "015_event_log_writer_index.sql"


def test_the_writer_index_applies_to_a_log_with_events(db_server, tmp_path):
    with EarlierSchema(db_server, tmp_path, 15) as schema:
        before, conn = schema.applied, schema.conn
        assert INDEX not in before and "011_cluster_offsets.sql" in before
        t0 = dt.datetime(2026, 1, 2, 3, 4, 5)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO event_writers (started_at) VALUES (%s)", [(t0,), (t0,)])
            writers = [None, 1, 2, 1, 2, 2, 1]
            cur.executemany("INSERT INTO event_log (writer, event, payload, created_at)"
                            " VALUES (%s, 'message', '{}', %s)", [(w, t0) for w in writers])
            cur.execute("INSERT INTO event_log_targets (`offset`, kind, target_id) SELECT `offset`, 'u', 'x'"
                        " FROM event_log")
        after = schema.upgrade()
        assert INDEX in after
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM event_log")
            assert cur.fetchone()[0] == len(writers)
            cur.execute("EXPLAIN SELECT MIN(`offset`) FROM event_log WHERE writer = 1 AND `offset` > 2")
            plan = " ".join(str(v) for v in cur.fetchone())
            cur.execute("SELECT MIN(`offset`) FROM event_log WHERE writer = 2 AND `offset` > 3")
            first = cur.fetchone()[0]
        assert "ix_event_log_writer" in plan or "Select tables optimized away" in plan, plan
        assert first == 5
