"""The REST scenarios, driven by wrk: `rest-me` (the cheapest authenticated request, 32 users'
tokens) and `rest-history` (a page of 50 messages), plain and `rich` (every message on the page
carries three reactions and replies to an earlier message). Run by bench/runner.py.

rest-history-rich answers issue 12's question: does a page with reactions and replies stay
within 15 % of a plain page? The two are measured in the same run, one after the other.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import aiohttp

if TYPE_CHECKING:
    from .runner import Bench

TOKEN_USERS = 32                  # rest-me: one token per wrk connection's worth of users
HISTORY_MESSAGES = 1000
PAGE = 50
# rest-history-rich: each of the newest messages carries these reactions (user index, emoji).
RICH_REACTIONS = ((0, "👍"), (1, "👍"), (1, "❤️"))


def log(msg: str) -> None:
    from .runner import log as runner_log
    runner_log(msg)


async def rest_me(bench: "Bench", target: str = "nexus") -> None:
    tokens = [user.token for user in bench.users[:TOKEN_USERS]]
    m = bench.meter()
    r = await bench.run_wrk(bench.server.url + "/api/auth/me", tokens, bench.dur(15, 5))
    cpu = m.stop()
    bench.add({"scenario": "rest-me", "target": target, "connections": 32, "users": len(tokens), **r,
               "cpu": cpu, "ok": r["non_2xx"] == 0})


async def _connect_sender(bench: "Bench", key: str, token: str) -> None:
    pool = bench.pool
    res = await asyncio.to_thread(pool.call, "connect", [
        {"tokens": [(key, token)]}, *[{"tokens": []} for _ in range(len(pool) - 1)]],
        url=bench.server.url, timeout=60)
    if res[0]["ok"] != 1:
        raise RuntimeError(f"history sender could not connect: {res[0]['errors']}")


async def _send(bench: "Bench", key: str, recipient_id: str, count: int,
                reply_to_ids: list[str] | None = None) -> dict:
    seeded = await asyncio.to_thread(bench._call_first, "send_many",
                                     {"key": key, "recipient_id": recipient_id, "count": count,
                                      "reply_to_ids": reply_to_ids})
    if seeded["failed"]:
        raise RuntimeError(f"seeding the conversation failed: {seeded}")
    return seeded


async def _check_page(url: str, token: str, rich: bool) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            body = await resp.json(content_type=None)
    page = body.get("data") or []
    if resp.status != 200 or len(page) != PAGE:
        raise RuntimeError(f"history check failed: {resp.status} {str(body)[:300]}")
    if rich and not all(m["replyTo"] and sum(r["count"] for r in m["reactions"]) == len(RICH_REACTIONS)
                        for m in page):
        raise RuntimeError(f"rich history page lacks reactions or replies: {str(page[0])[:300]}")


def _store_reactions(db, message_ids: list[str], user_ids: list[str]) -> None:
    """Blocking (runs in a thread): RICH_REACTIONS on each message, written straight into the
    schema. Through the API they take minutes: a conversation's reactions are serialised (its
    lock keeps events in commit order), and seeding is not what this scenario measures."""
    import pymysql
    conn = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                           database=db.name, autocommit=True, charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            marks = ", ".join(["%s"] * len(message_ids))
            cur.execute(f"SELECT seq FROM messages WHERE id IN ({marks})", message_ids)
            seqs = [seq for (seq,) in cur.fetchall()]
            rows = [(seq, emoji, user_ids[who]) for seq in seqs for who, emoji in RICH_REACTIONS]
            cur.executemany("INSERT INTO message_reactions (message_seq, emoji, user_id, created_at)"
                            " VALUES (%s, %s, %s, NOW(3))", rows)
            # and the summary each message carries (as sql/013_reactions_wire.sql builds it)
            marks = ", ".join(["%s"] * len(seqs))
            cur.execute(
                "UPDATE messages m JOIN (SELECT message_seq, JSON_ARRAYAGG(JSON_OBJECT('emoji', emoji, 'count', n,"
                " 'userIds', JSON_QUERY(user_ids, '$'), 'reactedByMe', 1 = 0) ORDER BY first_at, emoji) AS summary"
                " FROM (SELECT message_seq, emoji, COUNT(*) AS n,"
                " JSON_ARRAYAGG(user_id ORDER BY created_at, user_id LIMIT 10) AS user_ids,"
                " MIN(created_at) AS first_at FROM message_reactions"
                f" WHERE message_seq IN ({marks}) GROUP BY message_seq, emoji) per_emoji GROUP BY message_seq) s"
                " ON s.message_seq = m.seq SET m.reactions_summary = s.summary", seqs)
    finally:
        conn.close()


async def rest_history(bench: "Bench", rich: bool = False) -> None:
    """rich: users 2 and 3 hold a conversation of HISTORY_MESSAGES plain messages followed by
    HISTORY_MESSAGES replies (the i-th answers the i-th plain one), each reply with the
    RICH_REACTIONS; the page read is the newest replies. Else users 0 and 1, plain messages."""
    a, b = (bench.users[2], bench.users[3]) if rich else (bench.users[0], bench.users[1])
    key = "hist-rich" if rich else "hist-a"
    await _connect_sender(bench, key, a.token)
    t0 = time.monotonic()
    seeded = await _send(bench, key, b.id, HISTORY_MESSAGES)
    if rich:
        replies = await _send(bench, key, b.id, HISTORY_MESSAGES, reply_to_ids=seeded["ids"])
        await asyncio.to_thread(_store_reactions, bench.db, replies["ids"], [a.id, b.id])
    seed_s = time.monotonic() - t0
    log(f"seeded the {'rich ' if rich else ''}conversation in {seed_s:.1f} s")
    await asyncio.to_thread(bench.pool.call, "close_all", timeout=60)
    url = f"{bench.server.url}/api/chat/messages?recipientId={b.id}&limit={PAGE}"
    await _check_page(url, a.token, rich)
    m = bench.meter()
    r = await bench.run_wrk(url, [a.token], bench.dur(15, 5))
    cpu = m.stop()
    bench.add({"scenario": "rest-history-rich" if rich else "rest-history", "connections": 32,
               "conversation_messages": HISTORY_MESSAGES * (2 if rich else 1), "page": PAGE,
               "reactions_per_message": len(RICH_REACTIONS) if rich else 0, "replies": rich,
               "seed_s": round(seed_s, 2), **r, "cpu": cpu, "ok": r["non_2xx"] == 0})


# ---- recent-1k: the conversation list of a user with a thousand conversations ---------------
RECENT_CONVERSATIONS = 1000
RECENT_RATE = 10.0            # requests per second, open loop


def _seed_conversations(db, me: str, count: int) -> None:
    """Blocking (runs in a thread): ``count`` partners, each with a conversation with ``me``
    holding three messages (the last one from the partner, unread), straight into the schema."""
    import uuid

    import pymysql
    conn = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                           database=db.name, autocommit=False, charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            partners = [str(uuid.uuid4()) for _ in range(count)]
            cur.executemany("INSERT INTO users (id, email, username, password_hash, full_name, created_at,"
                            " updated_at) VALUES (%s, %s, %s, 'x', 'Partner', NOW(3), NOW(3))",
                            [(p, f"{p}@bench.example.com", f"p_{p[:16]}") for p in partners])
            conversations = [(str(uuid.uuid4()), p) for p in partners]
            cur.executemany("INSERT INTO conversations (id, creator_id, recipient_id, user_low_id, user_high_id,"
                            " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, NOW(3), NOW(3))",
                            [(c, me, p, min(me, p), max(me, p)) for c, p in conversations])
            cur.executemany("INSERT INTO messages (id, conversation_id, sender_id, content, created_at, updated_at)"
                            " VALUES (%s, %s, %s, %s, NOW(3), NOW(3))",
                            [(str(uuid.uuid4()), c, sender, f"message {i} of {c[:8]}")
                             for c, p in conversations for i, sender in enumerate((me, p, p))])
        conn.commit()
    finally:
        conn.close()


async def _at_rate(url: str, token: str, rate: float, duration: float) -> dict:
    """GET ``url`` at ``rate``/s, open loop; latency from each request's due time."""
    from .common import latency_summary
    latencies: list[float] = []
    errors = 0
    sizes: list[int] = []
    async with aiohttp.ClientSession() as session:
        async def one(due: float) -> None:
            nonlocal errors
            try:
                async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        errors += 1
                    sizes.append(len(body))
            except Exception:  # noqa: BLE001 - counted
                errors += 1
            latencies.append(time.monotonic() - due)

        t0 = time.monotonic() + 0.2
        tasks = []
        for i in range(int(rate * duration)):
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.wait(tasks, timeout=60)
    return {**latency_summary(latencies), "rate": rate, "errors": errors,
            "body_kib": round(sum(sizes) / len(sizes) / 1024, 1) if sizes else 0}


async def recent_1k(bench: "Bench") -> None:
    """`GET /chat/recent-messages` (the whole list, the old contract) and one page of
    `GET /chat/conversations` for a user in RECENT_CONVERSATIONS conversations (issue 15:
    p99 ≤ 50 ms)."""
    me = bench.users[4]
    t0 = time.monotonic()
    await asyncio.to_thread(_seed_conversations, bench.db, me.id, RECENT_CONVERSATIONS)
    seed_s = time.monotonic() - t0
    base = bench.server.url + "/api/chat/"
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "recent-messages", headers={"Authorization": f"Bearer {me.token}"}) as resp:
            body = await resp.json(content_type=None)
    if resp.status != 200 or len(body.get("data") or []) != RECENT_CONVERSATIONS:
        raise RuntimeError(f"recent-messages check failed: {resp.status} {str(body)[:300]}")
    m = bench.meter()
    recent = await _at_rate(base + "recent-messages", me.token, RECENT_RATE, bench.dur(10, 5))
    inbox = await _at_rate(base + "conversations?limit=20", me.token, RECENT_RATE, bench.dur(10, 5))
    cpu = m.stop()
    bench.add({"scenario": "recent-1k", "conversations": RECENT_CONVERSATIONS, "seed_s": round(seed_s, 2),
               "recent_messages": recent, "conversations_page": inbox, "cpu": cpu,
               "ok": recent["errors"] == 0 and inbox["errors"] == 0})
