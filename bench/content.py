"""Scenarios about what messages carry: `search` over a million stored messages and
`photo-upload` (100 phones sending a 3 MB photo at once). Run by bench/runner.py.

search: 1,000,000 messages are written straight into the schema (a bench set-up, not an API
path: through the socket it would take longer than the whole run) over 1,000 conversations,
50 of them with the searching user, from a Zipf-distributed vocabulary, so a word can be rare
(a few hits), medium or common (tens of thousands). Queries go at a fixed rate, open loop, so
latency includes any queueing.

photo-upload: the thumbnails are made in the executor; the question is whether the event loop
stays free meanwhile, measured as `/auth/me` latency from a steady probe during the uploads.
"""
from __future__ import annotations

import asyncio
import io
import itertools
import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from nexus_chat.searchtext import scope_token

from .common import latency_summary

if TYPE_CHECKING:
    from .runner import Bench

SEARCH_MESSAGES = 1_000_000
SEARCH_CONVERSATIONS = 1000
SEARCH_MINE = 50            # conversations that include the searching user
VOCABULARY = 30_000
WORDS_PER_MESSAGE = 12
INSERT_BATCH = 5000         # rows per INSERT: big enough to amortise the round trip
COMMON_RANKS = (100, 120)
FULLTEXT_INDEX = "ft_messages_content"   # sql/004_message_search.sql, 009_search_scope.sql
# Queries per second, per word class, each class on its own for the scenario's duration. One
# common-word query costs MariaDB ~0.2-0.3 s of CPU over 1,000,000 messages on this box, a
# medium one ~0.13 s, a rare one a few ms: at 20/s each (the earlier setting) the database
# needed several cores for the common class and the queue grew for the whole step (p50 16 s),
# which measured the backlog, not a search. These rates keep each class within about half a
# core, so the latencies are those of searches; the capacity is the cost above.
SEARCH_RATES = {"rare": 20.0, "medium": 4.0, "common": 2.0}
PHOTOS = 100
PHOTO_BYTES = 3 * 1024 * 1024
PROBE_RATE = 50.0           # /auth/me per second during the uploads (bench/probe.py)


def _word(rank: int) -> str:
    """Pronounceable, distinct, ≥ 4 letters: never a stopword or below the token size."""
    consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
    out, n = [], rank + 1
    while n or len(out) < 4:
        out.append(consonants[n % 17] + vowels[(n // 17) % 5])
        n //= 85
    return "".join(out)


def _seed_messages(db, user_ids: list[str], me: str, count: int) -> dict:
    """Blocking (runs in a thread): conversations and ``count`` messages by plain INSERTs."""
    import pymysql
    rng = random.Random(42)
    conn = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                           database=db.name, autocommit=False, charset="utf8mb4")
    t0 = time.monotonic()
    try:
        with conn.cursor() as cur:
            others = [u for u in user_ids if u != me]
            pairs = {tuple(sorted((me, other))) for other in others[:SEARCH_MINE]}
            while len(pairs) < SEARCH_CONVERSATIONS:
                a, b = rng.sample(others, 2)
                pairs.add(tuple(sorted((a, b))))
            for low, high in sorted(pairs):   # earlier scenarios may have made some of them
                cur.execute("INSERT IGNORE INTO conversations (id, creator_id, recipient_id, user_low_id,"
                            " user_high_id, created_at, updated_at)"
                            " VALUES (%s, %s, %s, %s, %s, NOW(3), NOW(3))",
                            (str(uuid.uuid4()), low, high, low, high))
            conn.commit()
            cur.execute("SELECT id, user_low_id, user_high_id FROM conversations")
            conversations = [row for row in cur.fetchall() if (row[1], row[2]) in pairs]
            vocabulary = [_word(i) for i in range(VOCABULARY)]
            # Cumulative once: with plain weights, random.choices sums all 30,000 of them on
            # every call, which was most of the seeding time (~700 rows/s).
            cum_weights = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(VOCABULARY)))
            # The FULLTEXT index is dropped while the rows go in and built once at the end
            # (1M rows on this box: ~35 s of INSERTs + ~50 s to build, against ~200 s of
            # INSERTs with the index kept). The foreign keys are known to hold (the ids were
            # just read back), so they are not checked row by row.
            cur.execute("ALTER TABLE messages DROP INDEX " + FULLTEXT_INDEX)
            cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
            t_insert = time.monotonic()
            for start in range(0, count, INSERT_BATCH):
                values = []
                for _ in range(min(INSERT_BATCH, count - start)):
                    cid, low, high = conversations[rng.randrange(len(conversations))]
                    text = " ".join(rng.choices(vocabulary, cum_weights=cum_weights, k=WORDS_PER_MESSAGE))
                    values.append(f"('{uuid.uuid4()}', '{cid}', '{rng.choice((low, high))}', '{text}',"
                                  f" '{scope_token(cid, None)}', NOW(3), NOW(3))")
                # One multi-row INSERT per batch; every value is a generated UUID or made of
                # the generated vocabulary's letters, so nothing needs escaping.
                cur.execute("INSERT INTO messages (id, conversation_id, sender_id, content, search_scope,"
                            " created_at, updated_at) VALUES " + ",".join(values))
                conn.commit()
            insert_s = time.monotonic() - t_insert
            t_index = time.monotonic()
            cur.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")
            # FORCE: rebuilt with the table. Added back in place, the index matches nothing on
            # MariaDB 10.11 when the table's FTS_DOC_ID column came from an ALTER (as with
            # migration 004); the count below checks that the index answers.
            cur.execute(f"ALTER TABLE messages ADD FULLTEXT INDEX {FULLTEXT_INDEX} (content, search_scope), FORCE")
            index_s = time.monotonic() - t_index
            cur.execute("SELECT COUNT(*) FROM messages WHERE MATCH (content, search_scope)"
                        " AGAINST (%s IN BOOLEAN MODE)",
                        (f'+"{vocabulary[COMMON_RANKS[0]]}"',))
            (common_matches,) = cur.fetchone()
            if not common_matches:
                raise RuntimeError("the rebuilt FULLTEXT index finds nothing")
            cur.execute("SELECT COUNT(*) FROM messages")
            (rows_total,) = cur.fetchone()
            cur.execute("SELECT DATA_LENGTH, INDEX_LENGTH FROM information_schema.TABLES"
                        " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'messages'", (db.name,))
            data_length, index_length = cur.fetchone()
            cur.execute("SELECT COALESCE(SUM(ALLOCATED_SIZE), 0) FROM information_schema.INNODB_SYS_TABLESPACES"
                        " WHERE NAME LIKE %s", (f"{db.name}/FTS%",))
            (fts_bytes,) = cur.fetchone()
            cur.execute("SELECT @@innodb_ft_min_token_size")
            (min_token,) = cur.fetchone()
    finally:
        conn.close()
    return {"messages": rows_total, "conversations": len(conversations), "mine": SEARCH_MINE,
            "seed_s": round(time.monotonic() - t0, 1), "insert_s": round(insert_s, 1),
            "insert_rows_per_s": round(count / insert_s), "fulltext_build_s": round(index_s, 1),
            "common_word_messages": common_matches,
            "table_mib": round(data_length / 2**20, 1),
            "btree_indexes_mib": round(index_length / 2**20, 1),
            "fulltext_index_mib": round(int(fts_bytes) / 2**20, 1),
            "innodb_ft_min_token_size": min_token, "vocabulary": vocabulary}


async def _fixed_rate(session: aiohttp.ClientSession, urls: list[str], token: str, rate: float,
                      duration: float) -> dict:
    """GET the urls round-robin at ``rate``/s, open loop; latency counted from each due time."""
    latencies: list[float] = []
    hits: list[int] = []
    errors = 0
    t0 = time.monotonic() + 0.2

    async def one(url: str, due: float) -> None:
        nonlocal errors
        try:
            async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                body = await resp.json(content_type=None)
                if resp.status != 200:
                    errors += 1
                else:
                    hits.append(len(body["data"]["results"]))
        except Exception:  # noqa: BLE001 - counted
            errors += 1
        latencies.append(time.monotonic() - due)

    tasks = []
    for i in range(int(rate * duration)):
        due = t0 + i / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        tasks.append(asyncio.create_task(one(urls[i % len(urls)], due)))
    await asyncio.wait(tasks, timeout=60)
    return {**latency_summary(latencies), "errors": errors,
            "mean_hits_per_page": round(sum(hits) / len(hits), 1) if hits else 0}


async def search(bench: Bench) -> None:
    me = bench.users[0]
    count = 100_000 if bench.quick else SEARCH_MESSAGES
    seeded = await asyncio.to_thread(_seed_messages, bench.db, [u.id for u in bench.users], me.id, count)
    vocabulary = seeded.pop("vocabulary")
    print(f"[bench {time.strftime('%H:%M:%S')}] seeded {seeded['messages']:,} messages in "
          f"{seeded['seed_s']} s", file=sys.stderr, flush=True)
    # Word frequency follows Zipf (rank r: about 1/(10.9 r) of the words): rank 100-120 is in
    # about 1 % of the messages (a common word of chat, once stopwords are left out), rank
    # 500-600 in 0.2 %, the last 200 in a few messages each.
    classes = {"rare": vocabulary[-200:], "medium": vocabulary[500:600],
               "common": vocabulary[COMMON_RANKS[0]:COMMON_RANKS[1]]}
    duration = bench.dur(15, 5)
    results = {}
    m = bench.meter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64),
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        for name, words in classes.items():
            urls = [f"{bench.server.url}/api/chat/search?q={w}&limit=20" for w in words]
            results[name] = await _fixed_rate(session, urls, me.token, SEARCH_RATES[name], duration)
    cpu = m.stop()
    bench.add({"scenario": "search", **seeded, "rate_per_class": SEARCH_RATES, "duration_s": duration,
               "classes": results, "cpu": cpu,
               "ok": all(r["errors"] == 0 for r in results.values())})


def _photo(size: int) -> bytes:
    """A noisy JPEG of about ``size`` bytes (noise does not compress, like a real photo)."""
    from PIL import Image
    side = 1800
    while True:
        img = Image.frombytes("RGB", (side, side * 3 // 4), random.Random(side).randbytes(side * side * 3 // 4 * 3))
        out = io.BytesIO()
        img.save(out, "JPEG", quality=90)
        if out.tell() >= size * 0.9:
            return out.getvalue()
        side += 200


async def photo_upload(bench: Bench) -> None:
    photo = await asyncio.to_thread(_photo, PHOTO_BYTES)
    senders = bench.users[:PHOTOS]
    url = bench.server.url
    upload_lat: list[float] = []
    upload_errors: list[str] = []
    probe = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.probe", url + "/api/auth/me", bench.users[-1].token, str(PROBE_RATE),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=str(Path(__file__).parent.parent))
    # One upload first (by a user who is not in the burst): the server's media worker
    # processes start on the first one, and the CPU meter counts the processes present when
    # it starts.
    async with aiohttp.ClientSession() as session:
        form = aiohttp.FormData()
        form.add_field("file", photo, filename="warm-up.jpg", content_type="image/jpeg")
        async with session.post(url + "/api/chat/attachments", data=form,
                                headers={"Authorization": f"Bearer {bench.users[-2].token}"}) as resp:
            await resp.read()
    m = bench.meter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=PHOTOS),
                                     timeout=aiohttp.ClientTimeout(total=180)) as session:
        async def upload(user) -> None:
            form = aiohttp.FormData()
            form.add_field("file", photo, filename="IMG_0001.jpg", content_type="image/jpeg")
            t = time.monotonic()
            try:
                async with session.post(url + "/api/chat/attachments", data=form,
                                        headers={"Authorization": f"Bearer {user.token}"}) as resp:
                    body = await resp.json(content_type=None)
                    if resp.status != 201:
                        upload_errors.append(f"{resp.status} {str(body)[:120]}")
            except Exception as exc:  # noqa: BLE001 - counted
                upload_errors.append(repr(exc))
            upload_lat.append(time.monotonic() - t)

        await asyncio.sleep(1.0)   # the probe's baseline before the burst
        t0 = time.monotonic()
        await asyncio.gather(*(upload(u) for u in senders))
        elapsed = time.monotonic() - t0
    probe.stdin.close()
    out, _ = await asyncio.wait_for(probe.communicate(), timeout=90)
    cpu = m.stop()
    me = json.loads(out.decode().strip().splitlines()[-1])
    bench.add({"scenario": "photo-upload", "photos": len(senders), "photo_bytes": len(photo),
               "elapsed_s": round(elapsed, 2), "uploads_per_s": round(len(senders) / elapsed, 1),
               "upload": {**latency_summary(upload_lat), "errors": len(upload_errors),
                          "first_errors": upload_errors[:3]},
               "me_during": {**me, "target_p99_ms": 50.0},
               "cpu": cpu, "ok": not upload_errors and me["errors"] == 0})
