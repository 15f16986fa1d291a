"""A seeded protocol fuzzer against a live server (issue 9): hostile Engine.IO / Socket.IO
packets over both transports, from many client addresses at once (random bytes, truncation,
lying attachment counts, huge ack ids, bad namespaces, events before CONNECT, oversize frames,
deep nesting, unknown sids, mixed transports, junk events from a logged-in user; see
tests/e2e/protocol_fuzz.py). After each batch: the process is alive, /api/health answers quickly, a
well-behaved client still chats, the resident memory stays within its bound, and the log holds
no traceback, error line or 5xx.

NEXUS_FUZZ_SEED (default: a new one, printed) and NEXUS_FUZZ_PACKETS (default 10,000) choose
the run: `NEXUS_FUZZ_SEED=7 NEXUS_FUZZ_PACKETS=200000 bin/test tests/e2e/test_protocol_fuzz.py`.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import time

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClosedError, websocket_connect

from .chat_support import ChatClient
from .protocol_fuzz import Case, make_case
from .server_process import ServerProcess
from .support import Api, make_user

PACKETS = int(os.environ.get("NEXUS_FUZZ_PACKETS", "10000"))
SEED = int(os.environ.get("NEXUS_FUZZ_SEED", str(random.SystemRandom().randrange(10**6))))
BATCH_PACKETS = 1000
CONCURRENT_CASES = 12
CASE_TIMEOUT_S = 20
HEALTH_WITHIN_S = 2.0          # a liveness bound, not a speed figure
RSS_GROWTH_BOUND = 120 * 2**20  # over the RSS after warm-up
CLIENT_IPS = [f"10.77.{i // 250}.{i % 250 + 1}" for i in range(64)]

# Short heartbeats and deadlines, so that abandoned sessions end while the run goes on; a low
# per-IP cap on sessions without /chat, so that the busiest address meets it.
SERVER_ENV = {"NEXUS_PING_INTERVAL_MS": "1000", "NEXUS_PING_TIMEOUT_MS": "1000",
              "NEXUS_CONNECT_TIMEOUT_MS": "2000", "NEXUS_ATTACHMENT_TIMEOUT_MS": "2000",
              "NEXUS_MAX_UNAUTHENTICATED_PER_IP": "4"}


class Fuzzer:
    def __init__(self, server: ServerProcess, token: str, seed: int) -> None:
        self.server = server
        self.token = token
        self.rng = random.Random(seed)
        self.http = AsyncHTTPClient(force_instance=True, max_clients=CONCURRENT_CASES * 2)
        self.sent = 0
        self.server_errors: list[str] = []
        self.statuses: dict[int, int] = {}   # answers to handshakes and POSTs
        self.chat_sessions = 0                # hostile clients logged in on /chat (websocket)

    # ---------------------------------------------------------------- one case
    async def run_case(self, case: Case, rng: random.Random) -> None:
        # A quarter of the cases come from one address: its caps and rate limit are reached.
        ip = CLIENT_IPS[0] if rng.random() < 0.25 else rng.choice(CLIENT_IPS)
        try:
            if case.transport == "websocket":
                await asyncio.wait_for(self._websocket(case, ip), CASE_TIMEOUT_S)
            else:
                await asyncio.wait_for(self._polling(case, ip, rng), CASE_TIMEOUT_S)
        except asyncio.TimeoutError:
            pass  # a hostile client that waits for nothing; liveness is checked per batch

    def _url(self, transport: str, sid: str | None = None) -> str:
        base = self.server.ws_url if transport == "websocket" else self.server.base_url
        url = f"{base}/socket.io/?EIO=4&transport={transport}"
        return url + (f"&sid={sid}" if sid is not None else "")

    async def _request(self, method: str, url: str, ip: str, body: bytes | None = None):
        request = HTTPRequest(url, method=method, body=body, request_timeout=5,
                              headers={"X-Forwarded-For": ip, "Content-Type": "text/plain;charset=UTF-8"},
                              allow_nonstandard_methods=True)
        response = await self.http.fetch(request, raise_error=False)
        self.statuses[response.code] = self.statuses.get(response.code, 0) + 1
        if response.code >= 500 and response.code != 599:
            self.server_errors.append(f"{method} {url.split('?')[0]} -> {response.code}")
        return response

    async def _open_websocket(self, url: str, ip: str):
        try:
            conn = await websocket_connect(HTTPRequest(url, headers={"X-Forwarded-For": ip}),
                                           max_message_size=10 * 2**20)
        except HTTPClientError as exc:
            self.statuses[exc.code] = self.statuses.get(exc.code, 0) + 1
            if exc.code >= 500 and exc.code != 503:
                self.server_errors.append(f"websocket handshake -> {exc.code}")
            return None
        except (OSError, WebSocketClosedError):
            return None
        return conn

    async def _send_ws(self, conn, messages) -> None:
        for message in messages:
            try:
                await conn.write_message(message, binary=isinstance(message, bytes))
            except (WebSocketClosedError, OSError):
                return
            self.sent += 1

    async def _websocket(self, case: Case, ip: str) -> None:
        sid = case.sid
        if case.mixed:  # a polling session, carried on a websocket without the probe
            opened = await self._request("GET", self._url("polling"), ip)
            sid = _sid(opened.body) if opened.code == 200 else "none"
        conn = await self._open_websocket(self._url("websocket", sid), ip)
        if conn is None:
            return
        try:
            if sid is None and not (await conn.read_message() or "").startswith("0"):
                return
            if case.connect_chat:
                await self._send_ws(conn, [f'40/chat,{{"token":"{self.token}"}}'])
                if ((await conn.read_message()) or "").startswith("40/chat,"):
                    self.chat_sessions += 1
            await self._send_ws(conn, case.messages)
            if case.oversize:
                await self._send_ws(conn, ["4" + "x" * case.oversize])
        finally:
            conn.close()

    async def _polling(self, case: Case, ip: str, rng: random.Random) -> None:
        if case.sid is not None:
            sid = case.sid
        elif case.mixed:  # a websocket session, posted to over polling
            conn = await self._open_websocket(self._url("websocket"), ip)
            if conn is None:
                return
            opened = await conn.read_message()
            sid = _sid((opened or "0{}").encode())
        else:
            opened = await self._request("GET", self._url("polling"), ip)
            if opened.code != 200:
                return
            sid = _sid(opened.body)
        url = self._url("polling", sid)
        if case.connect_chat:
            await self._request("POST", url, ip, f'40/chat,{{"token":"{self.token}"}}'.encode())
        messages = list(case.messages)
        while messages:
            take = rng.randrange(1, 5)
            chunk, messages = messages[:take], messages[take:]
            if len(chunk) == 1 and isinstance(chunk[0], bytes) and rng.random() < 0.5:
                body = chunk[0]  # raw bytes as the whole body
            else:
                body = "\x1e".join(m if isinstance(m, str) else "b" + base64.b64encode(m).decode()
                                   for m in chunk).encode()
            response = await self._request("POST", url, ip, body)
            self.sent += len(chunk)
            if response.code != 200:
                break
            if rng.random() < 0.1:
                await self._request("GET", url, ip)
        if case.oversize:
            await self._request("POST", url, ip, b"4" + b"x" * case.oversize)
            self.sent += 1
        if case.mixed:
            await self._request("GET", url, ip)

    # ---------------------------------------------------------------- batches
    async def batch(self, packets: int) -> None:
        target = self.sent + packets
        pending: set[asyncio.Task] = set()
        while self.sent < target or pending:
            while self.sent < target and len(pending) < CONCURRENT_CASES:
                # Cases come from the seed in order; each runs on a generator of its own, so the
                # same seed sends the same packets however the cases interleave.
                case = make_case(self.rng)
                pending.add(asyncio.ensure_future(self.run_case(case, random.Random(self.rng.randrange(2**32)))))
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
            if self.sent >= target:
                await asyncio.gather(*pending)
                pending = set()


def _sid(open_packet: bytes) -> str:
    try:
        return json.loads(open_packet.decode()[1:])["sid"]
    except (ValueError, KeyError, UnicodeDecodeError):
        return "none"


@pytest.fixture
def fuzz_server(tmp_path, db_server, mail_sink):
    server = ServerProcess(tmp_path, db_server, mail_sink.port, **SERVER_ENV)
    yield server
    server.stop()


async def still_chats(server: ServerProcess, sender: ChatClient, recipient_user, n: int) -> None:
    transports = [["websocket"], ["polling", "websocket"], ["polling"]][n % 3]
    recipient = await ChatClient(server.base_url, recipient_user, transports,
                                 ignore=("userStatusChanged",)).connect()
    try:
        sent = await sender.send(f"still here {n}", recipientId=recipient_user.id)
        await recipient.wait_until(lambda: sent in recipient.of("message"), what="the message")
    finally:
        await recipient.sio.disconnect()


@pytest.mark.gen_test(timeout=1800)
async def test_hostile_packets_leave_the_server_healthy(fuzz_server, mail_sink):
    print(f"protocol fuzz: NEXUS_FUZZ_SEED={SEED} NEXUS_FUZZ_PACKETS={PACKETS}")
    server = fuzz_server
    api = Api(server.base_url)
    alice, bob, mallory = [await make_user(api, mail_sink, name) for name in ("alice", "bob", "mallory")]
    sender = await ChatClient(server.base_url, alice, ["websocket"], ignore=("userStatusChanged",)).connect()
    fuzzer = Fuzzer(server, mallory.access, SEED)
    await fuzzer.batch(200)                      # warm-up: every code path loaded once
    await still_chats(server, sender, bob, 0)
    await asyncio.sleep(3)                       # sessions of the warm-up end
    baseline = server.rss_bytes()
    batch = 0
    while fuzzer.sent < PACKETS:
        batch += 1
        batch_started = time.monotonic()
        await fuzzer.batch(min(BATCH_PACKETS, PACKETS - fuzzer.sent))
        print(f"protocol fuzz: batch {batch}: {fuzzer.sent} packets, {time.monotonic() - batch_started:.1f} s")
        where = f"seed {SEED}, batch {batch}, {fuzzer.sent} packets"
        assert server.alive(), f"{where}: the server died\n{server.log_text()[-5000:]}"
        started = time.monotonic()
        health = await asyncio.wait_for(api.get("/api/health"), 30)
        assert health.status == 200, where
        assert time.monotonic() - started < HEALTH_WITHIN_S, f"{where}: /api/health took too long"
        await still_chats(server, sender, bob, batch)
        rss = server.rss_bytes()
        assert rss < baseline + RSS_GROWTH_BOUND, \
            f"{where}: RSS {rss / 2**20:.0f} MB, {baseline / 2**20:.0f} MB after warm-up"
        assert not fuzzer.server_errors, f"{where}: {fuzzer.server_errors[:5]}"
        assert not server.log_problems(), f"{where}: " + "\n".join(server.log_problems()[:5])
    print(f"protocol fuzz: {fuzzer.sent} packets in {batch} batches, {fuzzer.chat_sessions} hostile "
          f"/chat sessions, answers {sorted(fuzzer.statuses.items())}; RSS "
          f"{baseline / 2**20:.0f} -> {server.rss_bytes() / 2**20:.0f} MB")
    assert fuzzer.chat_sessions > 0, "no hostile client got as far as /chat: the fuzzer tests too little"
    await sender.sio.disconnect()
    api.close()
