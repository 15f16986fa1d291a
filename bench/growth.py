"""Cost as work grows (issue 15): does a request cost the same when the data behind it grows?

`history-depth`: the newest page of a conversation of 1,000 messages against the newest page,
a page from the middle (a `before` cursor) and the oldest page of a conversation of 1,000,000,
each read by wrk for the same time. Flat means the pages of the big conversation are served at
the rate of the small one's (same index range scan of PAGE rows, whatever the depth).

`group-linear`: a group message costs the server in proportion to the members *connected*,
not to the members the group has. The same sender rate into a 200-member group with 25, 50,
100 and 199 of them connected, then into a 2,000-member group with 50 connected; the server's
CPU per message and per delivery of each step.

Both write straight into the schema (1,000,000 messages through the API would take an hour on
this box). Run by bench/runner.py.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING

from nexus_chat.searchtext import scope_token

from .seed import make_group

if TYPE_CHECKING:
    from .runner import Bench

PAGE = 50
SMALL, BIG = 1_000, 1_000_000
INSERT_BATCH = 5000         # rows per INSERT: big enough to amortise the round trip
FULLTEXT_INDEX = "ft_messages_content"   # sql/004_message_search.sql, 009_search_scope.sql

LINEAR_RATE = 20            # msg/s: well below group-max's ceiling, so each step costs what it costs
LINEAR_CONNECTED = (25, 50, 100, 199)
BIG_GROUP = 2000            # members of the second group (1,800 written into the schema)
BIG_GROUP_CONNECTED = 50


def log(msg: str) -> None:
    from .runner import log as runner_log
    runner_log(msg)


# ---- history-depth -----------------------------------------------------------------------------
def _seed_conversation(db, low: str, high: str, count: int) -> tuple[str, str, str]:
    """Blocking (runs in a thread): a conversation of ``low`` and ``high`` holding ``count``
    messages, alternating senders. Returns (conversation id, id of the middle message, id of
    the 51st oldest: a `before` cursor whose page is the oldest one)."""
    import pymysql
    low, high = sorted((low, high))
    conn = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                           database=db.name, autocommit=False, charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT IGNORE INTO conversations (id, creator_id, recipient_id, user_low_id,"
                        " user_high_id, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, NOW(3), NOW(3))",
                        (str(uuid.uuid4()), low, high, low, high))
            cur.execute("SELECT id FROM conversations WHERE user_low_id = %s AND user_high_id = %s", (low, high))
            (cid,) = cur.fetchone()
            scope = scope_token(cid, None)
            cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
            for start in range(0, count, INSERT_BATCH):
                # generated UUIDs and digits only: nothing to escape
                values = ",".join(
                    f"('{uuid.uuid4()}', '{cid}', '{(low, high)[i % 2]}', 'depth message {i}', '{scope}',"
                    " NOW(3), NOW(3))" for i in range(start, min(count, start + INSERT_BATCH)))
                cur.execute("INSERT INTO messages (id, conversation_id, sender_id, content, search_scope,"
                            " created_at, updated_at) VALUES " + values)
                conn.commit()
            cur.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")
            cur.execute("SELECT id FROM messages WHERE conversation_id = %s ORDER BY seq LIMIT 1 OFFSET %s",
                        (cid, count // 2))
            (middle,) = cur.fetchone()
            cur.execute("SELECT id FROM messages WHERE conversation_id = %s ORDER BY seq LIMIT 1 OFFSET %s",
                        (cid, PAGE))
            (oldest_cursor,) = cur.fetchone()
        conn.commit()
    finally:
        conn.close()
    return cid, middle, oldest_cursor


def _fulltext(db, drop: bool) -> float:
    """Blocking: drops the FULLTEXT index (seeding a million rows with it in place takes several
    times as long) or builds it again; returns the seconds it took."""
    import pymysql
    conn = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                           database=db.name, autocommit=True)
    t0 = time.monotonic()
    try:
        with conn.cursor() as cur:
            if drop:
                cur.execute("ALTER TABLE messages DROP INDEX " + FULLTEXT_INDEX)
            else:
                # FORCE (a table rebuild), as in bench/content.py: added back in place the index
                # can match nothing on MariaDB 10.11 when FTS_DOC_ID came from an ALTER.
                cur.execute(f"ALTER TABLE messages ADD FULLTEXT INDEX {FULLTEXT_INDEX}"
                            " (content, search_scope), FORCE")
    finally:
        conn.close()
    return time.monotonic() - t0


async def history_depth(bench: "Bench") -> None:
    a, b, c, d = bench.users[5], bench.users[6], bench.users[7], bench.users[8]
    big = bench.dur(BIG, BIG // 10)
    t0 = time.monotonic()
    dropped_s = await asyncio.to_thread(_fulltext, bench.db, True)
    try:
        await asyncio.to_thread(_seed_conversation, bench.db, a.id, b.id, SMALL)
        _, middle, oldest = await asyncio.to_thread(_seed_conversation, bench.db, c.id, d.id, big)
    finally:
        rebuilt_s = await asyncio.to_thread(_fulltext, bench.db, False)
    seed_s = time.monotonic() - t0
    log(f"history-depth: seeded {SMALL:,} + {big:,} messages in {seed_s:.1f} s"
        f" (FULLTEXT dropped {dropped_s:.1f} s, rebuilt {rebuilt_s:.1f} s)")
    base = bench.server.url + "/api/chat/messages?limit=50&recipientId="
    pages = [("small newest", SMALL, a.token, base + b.id),
             ("big newest", big, c.token, base + d.id),
             ("big middle", big, c.token, base + d.id + "&before=" + middle),
             ("big oldest", big, c.token, base + d.id + "&before=" + oldest)]
    results = []
    for name, size, token, url in pages:
        await bench.wait_quiet()
        m = bench.meter()
        r = await bench.run_wrk(url, [token], bench.dur(10, 4))
        cpu = m.stop()
        results.append({"page": name, "conversation_messages": size, **r, "cpu": cpu})
        log(f"  history-depth {name}: {r['rps']} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms")
    small_rps = results[0]["rps"]
    bench.add({"scenario": "history-depth", "page": PAGE, "seed_s": round(seed_s, 1),
               "fulltext_rebuild_s": round(rebuilt_s, 1), "pages": results,
               "big_vs_small_rps": [round(p["rps"] / small_rps, 2) if small_rps else None for p in results[1:]],
               "ok": all(p["non_2xx"] == 0 for p in results)})


# ---- group-linear ------------------------------------------------------------------------------
def _add_members(db, group_id: str, count: int) -> None:
    """Blocking: ``count`` accounts that never connect, written into the schema, join the group."""
    import pymysql
    conn = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                           database=db.name, autocommit=False, charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            ids = [str(uuid.uuid4()) for _ in range(count)]
            cur.executemany("INSERT INTO users (id, email, username, password_hash, full_name, created_at,"
                            " updated_at) VALUES (%s, %s, %s, 'x', 'Silent member', NOW(3), NOW(3))",
                            [(i, f"{i}@bench.example.com", f"s_{i[:16]}") for i in ids])
            cur.executemany("INSERT INTO group_members (group_id, user_id, role, joined_at)"
                            " VALUES (%s, %s, 'member', NOW(3))", [(group_id, i) for i in ids])
        conn.commit()
    finally:
        conn.close()


async def _linear_step(bench: "Bench", group_id: str, members: list, connected: int, label: str) -> dict:
    """``members[0]`` sends at LINEAR_RATE; ``members[1:connected + 1]`` are connected and count."""
    from .runner import merge_group
    W = len(bench.pool)
    sockets = members[:connected + 1]
    keys = [(f"l{i}", u.token) for i, u in enumerate(sockets)]
    assign = [i % W for i in range(len(sockets))]
    conn = await bench.connect_all(keys, assign)
    if conn["failed"]:
        raise RuntimeError(f"{conn['failed']} group-linear sockets failed to connect: {conn['errors']}")
    await asyncio.sleep(1.0)   # presence fan-out of the connects settles
    receivers = [[] for _ in range(W)]
    for i in range(1, len(sockets)):
        receivers[assign[i]].append(f"l{i}")
    step_s = bench.dur(8, 3)
    t_start = time.monotonic() + 0.5
    # one sender (at LINEAR_RATE, far below what one socket can send), not among the receivers
    per = [{"receivers": receivers[w], "senders": [["l0", 0]] if w == assign[0] else []} for w in range(W)]
    cpu_task = asyncio.create_task(bench.cpu_window(t_start, step_s))
    res = await asyncio.to_thread(bench.pool.call, "group_step", per, tag=f"lin{label}{connected}",
                                  group_id=group_id, n_senders=1, rate=LINEAR_RATE, duration=step_s, t_start=t_start,
                                  drain_s=5.0, timeout=step_s + 30)
    cpu = await cpu_task
    await asyncio.to_thread(bench.pool.call, "close_all", timeout=60)
    step = merge_group(LINEAR_RATE, step_s, connected, res)
    server_ms_per_msg = cpu["server"] * 1000 / LINEAR_RATE
    return {"group": label, "connected": connected, "rate": LINEAR_RATE,
            "server_cores": cpu["server"], "server_ms_per_message": round(server_ms_per_msg, 2),
            "server_us_per_delivery": round(server_ms_per_msg * 1000 / connected, 1),
            "delivery": step["delivery"], "missing": step["missing"], "pass": step["pass"], "cpu": cpu}


async def group_linear(bench: "Bench") -> None:
    owner, members = bench.users[0], bench.users[:200]
    small = await make_group(bench.server.url, owner, members)
    large = await make_group(bench.server.url, owner, members)
    await asyncio.to_thread(_add_members, bench.db, large, BIG_GROUP - len(members))
    steps = []
    for connected in LINEAR_CONNECTED:
        await bench.wait_quiet()
        steps.append(await _linear_step(bench, small, members, connected, "200"))
        log(f"  group-linear 200 members, {connected} connected: {steps[-1]['server_ms_per_message']} ms"
            f" of server CPU per message, {steps[-1]['server_us_per_delivery']} µs per delivery")
    await bench.wait_quiet()
    steps.append(await _linear_step(bench, large, members, BIG_GROUP_CONNECTED, str(BIG_GROUP)))
    log(f"  group-linear {BIG_GROUP} members, {BIG_GROUP_CONNECTED} connected:"
        f" {steps[-1]['server_ms_per_message']} ms per message")
    same_connected = next(s for s in steps if s["group"] == "200" and s["connected"] == BIG_GROUP_CONNECTED)
    bench.add({"scenario": "group-linear", "rate": LINEAR_RATE, "steps": steps,
               f"cost_{BIG_GROUP}_vs_200_members_at_{BIG_GROUP_CONNECTED}_connected":
                   round(steps[-1]["server_ms_per_message"] / same_connected["server_ms_per_message"], 2)
                   if same_connected["server_ms_per_message"] else None,
               "ok": all(s["pass"] for s in steps)})
