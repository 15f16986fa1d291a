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


async def rest_me(bench: "Bench") -> None:
    tokens = [user.token for user in bench.users[:TOKEN_USERS]]
    m = bench.meter()
    r = await bench.run_wrk(bench.server.url + "/api/auth/me", tokens, bench.dur(15, 5))
    cpu = m.stop()
    bench.add({"scenario": "rest-me", "connections": 32, "users": len(tokens), **r, "cpu": cpu,
               "ok": r["non_2xx"] == 0})


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
            # and the summary each message carries (as sql/010_history_page.sql builds it)
            marks = ", ".join(["%s"] * len(seqs))
            cur.execute(
                "UPDATE messages m JOIN (SELECT message_seq, JSON_ARRAYAGG(JSON_ARRAY(emoji, n, user_ids,"
                " first_at) ORDER BY first_at, emoji) AS summary FROM (SELECT message_seq, emoji, COUNT(*) AS n,"
                " GROUP_CONCAT(user_id ORDER BY created_at, user_id SEPARATOR ',' LIMIT 10) AS user_ids,"
                " CAST(MIN(created_at) AS CHAR) AS first_at FROM message_reactions"
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
