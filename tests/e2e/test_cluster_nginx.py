"""deploy/nginx-cluster.conf and deploy/nexus-chat@.service for real: three `nexus-chat serve`
processes (realtime.adapter = redis, one database, the suite's own Redis) behind the real nginx
running the cluster site with this test's ports. nginx is sticky by client address, so each
client connects from an address of its own on the loopback network (127.0.0.x); the access log
(with $upstream_addr) says which process nginx chose for it.

Users on different processes reach each other over both transports (the official JS client and
python-socketio, long-polling clients staying on one process); a process SIGKILLed under load
costs the users on the others nothing, and its clients reconnect through nginx; Redis restarted
under load: health says so meanwhile, nothing acknowledged is lost, delivery across processes
resumes; the leader of the background jobs killed: another takes over, a mail goes out once."""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import pytest
import redis.asyncio as aioredis
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from nexus_chat.lease import lease_key

from .chat_support import JS_DIR, ChatClient, make_group
from .nginx_support import DEPLOY, render_site, running_nginx
from .redis_support import private_redis_fixture
from .server_process import ServerProcess
from .support import Api, drop_database, make_user, register
from .test_chat_js_client import SCRIPT, NodeClient

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
PROCESSES = 3
IGNORED = ("userStatusChanged", "typing", "messagesRead", "messageDelivered")

redis_server = pytest.fixture(scope="session")(private_redis_fixture)


@pytest.fixture
def redis_url(redis_server):
    return os.environ.get("NEXUS_TEST_REDIS_URL") or redis_server.url


# ------------------------------------------------------------------------------- the cluster
@dataclass
class Cluster:
    processes: list[ServerProcess]
    redis_url: str
    key: str
    db_server: tuple
    database: str
    nginx_url: str = ""
    access_log: Path | None = None
    routes: dict[str, int] = field(default_factory=dict)     # client address -> process port

    def process(self, port: int) -> ServerProcess:
        return next(p for p in self.processes if p.port == port)

    def upstreams_of(self, address: str, path_part: str = "/socket.io/") -> list[int]:
        """The process port nginx used for each request of ``address`` on that path, in order."""
        ports = []
        for line in self.access_log.read_text().splitlines():
            remote, upstream, request = line.split("|", 2)
            if remote == address and path_part in request and upstream != "-":
                ports.append(int(upstream.split(",")[-1].strip().rsplit(":", 1)[1]))
        return ports

    async def route_of(self, address: str) -> int:
        """Which process nginx sends ``address`` to (asked with a request from that address)."""
        probe = uuid.uuid4().hex
        client = AsyncHTTPClient(force_instance=True)
        try:
            response = await client.fetch(HTTPRequest(f"{self.nginx_url}/api/health?probe={probe}",
                                                      network_interface=address), raise_error=False)
            assert response.code == 200, response.code
        finally:
            client.close()
        for _ in range(100):    # nginx writes the line once the answer has gone out
            ports = self.upstreams_of(address, probe)
            if ports:
                return ports[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"no access-log line for {address}")

    async def addresses_by_process(self, per_process: int) -> dict[int, list[str]]:
        """Client addresses that nginx routes to each process, ``per_process`` each."""
        found: dict[int, list[str]] = {p.port: [] for p in self.processes}
        for last in range(2, 250):
            address = f"127.0.0.{last}"
            port = await self.route_of(address)
            if len(found[port]) < per_process:
                found[port].append(address)
            if all(len(v) >= per_process for v in found.values()):
                return found
        raise AssertionError(f"nginx never routed enough addresses to every process: {found}")

    def sql(self, statement: str, args: tuple = ()) -> list[dict]:
        host, port, user, password = self.db_server
        conn = pymysql.connect(host=host, port=port, user=user, password=password,
                               database=self.database, autocommit=True,
                               cursorclass=pymysql.cursors.DictCursor)
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args)
                return list(cur.fetchall())
        finally:
            conn.close()


@pytest.fixture
def cluster(db_server, mail_sink, redis_url, tmp_path):
    database = f"nexus_cluster_{uuid.uuid4().hex[:10]}"
    key = f"nexus-test-{uuid.uuid4().hex[:10]}"
    env = dict(NEXUS_REALTIME_ADAPTER="redis", NEXUS_REDIS_URL=redis_url, NEXUS_REDIS_KEY=key,
               NEXUS_REDIS_LEASE_TTL_S="2", NEXUS_RATE_LIMITS="false", NEXUS_STORY_SWEEP_S="1",
               NEXUS_LOG_LEVEL="info")
    processes: list[ServerProcess] = []
    try:
        # One after the other: the first applies the migrations and writes var/secrets.json
        # (the JWT secrets every process must share; in production they come from the env file).
        for index in range(PROCESSES):
            processes.append(ServerProcess(tmp_path, db_server, mail_sink.port, database=database,
                                           log_name=f"server-{index}.log", **env))
        yield Cluster(processes, redis_url, key, db_server, database)
    finally:
        for process in processes:
            process.stop()
        drop_database(db_server, database)


@pytest.fixture
def nginx(cluster, tmp_path):
    attachments = tmp_path / "var" / "attachments"
    attachments.mkdir(parents=True, exist_ok=True)
    upstreams = [(f"server 127.0.0.1:{3000 + i} ", f"server 127.0.0.1:{p.port} ")
                 for i, p in enumerate(cluster.processes)]
    with running_nginx(lambda port: render_site("nginx-cluster.conf", upstreams, port, tmp_path / "public",
                                                attachments),
                       log_format="$remote_addr|$upstream_addr|$request") as (url, prefix):
        cluster.nginx_url = url
        cluster.access_log = prefix / "access.log"
        yield cluster


@pytest.fixture
def api(nginx):
    client = Api(nginx.nginx_url)
    yield client
    client.close()


@pytest.fixture
def users(api, mail_sink):
    async def create(prefix: str):
        return await make_user(api, mail_sink, prefix)
    return create


@pytest.fixture
def clients(io_loop, nginx):
    opened: list = []

    async def connect(user, address: str, transports=("websocket",), reconnection=False) -> ChatClient:
        client = ChatClient(nginx.nginx_url, user, list(transports), ignore=IGNORED,
                            local_address=address, reconnection=reconnection)
        opened.append(client)
        return await client.connect()

    yield connect

    async def close_all() -> None:
        for client in opened:
            await client.close()
    io_loop.run_sync(close_all, timeout=20)


def contents(client: ChatClient) -> list[str]:
    return [m["content"] for m in client.of("message")]


async def until(check, what: str, timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        done = check()
        if asyncio.iscoroutine(done):
            done = await done
        if done:
            return
        assert loop.time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.1)


async def get_json(url: str) -> tuple[int, dict]:
    client = AsyncHTTPClient(force_instance=True)
    try:
        response = await client.fetch(url, raise_error=False, request_timeout=5)
        body = json.loads(response.body) if response.body and response.code != 599 else {}
        return response.code, body.get("data", body)
    finally:
        client.close()


async def leader_gauge(process: ServerProcess) -> float | None:
    client = AsyncHTTPClient(force_instance=True)
    try:
        response = await client.fetch(f"{process.base_url}/metrics", raise_error=False, request_timeout=5)
    finally:
        client.close()
    if response.code != 200:
        return None
    found = re.search(rb"^nexus_background_leader (\S+)$", response.body, re.M)
    return float(found.group(1)) if found else None


# ------------------------------------------------------------------------------- the tests
@pytest.mark.gen_test(timeout=180)
async def test_users_on_three_processes_reach_each_other_through_nginx(nginx, api, users, clients,
                                                                       node_client):
    routes = await nginx.addresses_by_process(1)
    p1, p2, p3 = (p.port for p in nginx.processes)
    a, b, c = await users("ca"), await users("cb"), await users("cc")
    group_id = await make_group(api, a, [b, c])
    ws = await clients(a, routes[p1][0])                                  # WebSocket only
    polling = await clients(b, routes[p2][0], transports=["polling"])      # long-polling only
    assert polling.transport == "polling"
    # The official JS client, default options (polling, then the upgrade), on the third process.
    proc = await asyncio.create_subprocess_exec(
        node_client, str(SCRIPT), nginx.nginx_url, c.access, cwd=JS_DIR,
        env={**os.environ, "NEXUS_LOCAL_ADDRESS": routes[p3][0]}, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    js = NodeClient(proc)
    try:
        await js.until(lambda i: i["type"] == "upgrade")
        assert js.seen[0]["transport"] == "polling"

        sent = await ws.send("ws to polling", recipientId=b.id)
        await polling.wait_until(lambda: "ws to polling" in contents(polling), 10)
        assert polling.of("message") == [sent]
        await polling.send("polling to js", recipientId=c.id)
        got = await js.until(lambda i: i["type"] == "event" and i["event"] == "message")
        assert got["args"][0]["content"] == "polling to js" and got["args"][0]["senderId"] == b.id
        ack = await js.emit_with_ack("sendMessage", {"content": "js to the group", "groupId": group_id})
        assert ack["content"] == "js to the group"
        for client in (ws, polling):
            await client.wait_until(lambda client=client: "js to the group" in contents(client), 10)
        await ws.send("ws to js", recipientId=c.id)
        got = await js.until(lambda i: i["type"] == "event" and i["event"] == "message")
        assert got["args"][0]["content"] == "ws to js"
    finally:
        await js.close()

    # Each client stayed on its process: every /socket.io/ request of the long-polling client
    # (a new HTTP request each time) went to the same one, and the three were on three.
    # (nginx logs a WebSocket when it closes.)
    await ws.close()
    await polling.close()
    for address, port in ((routes[p1][0], p1), (routes[p2][0], p2), (routes[p3][0], p3)):
        await until(lambda address=address: nginx.upstreams_of(address), f"log lines of {address}", 5)
        used = nginx.upstreams_of(address)
        assert set(used) == {port}, (address, used)
    assert len(nginx.upstreams_of(routes[p2][0])) >= 3       # polling: several requests, one process


@pytest.mark.gen_test(timeout=240)
async def test_a_process_killed_under_load_loses_nothing_for_the_others(nginx, api, users, clients):
    routes = await nginx.addresses_by_process(2)
    p1, p2, p3 = (p.port for p in nginx.processes)
    s, r, w, v = await users("ks"), await users("kr"), await users("kw"), await users("kv")
    group_id = await make_group(api, s, [r, w, v])
    sender = await clients(s, routes[p1][0])
    receiver = await clients(r, routes[p2][0], transports=["polling"])
    other_sender = await clients(w, routes[p2][1])
    victim = await clients(v, routes[p3][0], reconnection=True)
    to_receiver: list[str] = []        # acked: 1-on-1 to r, and the group (r is a member)
    to_sender: list[str] = []          # acked: 1-on-1 from w (process 2) to s (process 1)
    killed = asyncio.Event()

    async def pump(client: ChatClient, name: str, plan, acked: list[str], window: int = 4) -> None:
        """Sends ``plan`` (content, target) with up to ``window`` messages awaiting their ack."""
        slots = asyncio.Semaphore(window)

        async def one(n: int, target: dict) -> None:
            async with slots:
                acked.append((await client.send(f"{name} {n}", **target))["id"])
                if n == 30 and name == "s":
                    nginx.process(p3).kill()         # SIGKILL, mid-stream
                    killed.set()
        await asyncio.gather(*(one(n, target) for n, target in enumerate(plan)))

    await asyncio.gather(
        pump(sender, "s", [{"recipientId": r.id} if n % 2 else {"groupId": group_id} for n in range(90)],
             to_receiver),
        pump(other_sender, "w", [{"recipientId": s.id}] * 60, to_sender))
    assert killed.is_set() and not nginx.process(p3).alive()
    # Everything acknowledged reached the users on the surviving processes, once each.
    for client, wanted in ((receiver, to_receiver), (sender, to_sender)):
        mine = lambda client=client: [m["id"] for m in client.of("message") if m["senderId"] != client.user.id]
        await client.wait_until(lambda: len(mine()) >= len(wanted), 20, "every message on a survivor")
        assert sorted(mine()) == sorted(wanted)

    # The victim's client reconnects through nginx, to a surviving process, and chats again.
    await victim.wait_until(lambda: victim.connected_times >= 2, 30, "the victim's reconnection")
    after = await sender.send("after the crash", recipientId=v.id)
    await victim.wait_until(lambda: "after the crash" in contents(victim), 10)
    assert victim.of("message")[-1]["id"] == after["id"]
    reply = await victim.send("I am back", recipientId=s.id)
    await sender.wait_until(lambda: "I am back" in contents(sender), 10)
    assert sender.of("message")[-1]["id"] == reply["id"]
    # nginx sent the reconnection to a survivor (logged when the WebSocket closes).
    await victim.close()
    await until(lambda: len(nginx.upstreams_of(routes[p3][0])) >= 2, "the reconnection's log line", 5)
    assert nginx.upstreams_of(routes[p3][0])[-1] in (p1, p2)


@pytest.mark.gen_test(timeout=240)
async def test_redis_restarted_under_load(nginx, api, users, clients, redis_server):
    if redis_server is None:
        pytest.skip("NEXUS_TEST_REDIS_URL: not our server to restart")
    routes = await nginx.addresses_by_process(2)
    p1, p2, _ = (p.port for p in nginx.processes)
    s, near, far = await users("rs"), await users("rn"), await users("rf")
    sender = await clients(s, routes[p1][0])
    local = await clients(near, routes[p1][1])           # same process as the sender
    remote = await clients(far, routes[p2][0])           # another process: through Redis
    sent_near: list[str] = []
    sent_far: list[str] = []                             # in the order the sends began
    stop = asyncio.Event()

    async def pump(recipient, sent: list[str], window: int = 3) -> None:
        """Sends to ``recipient`` without pause, ``window`` messages awaiting their ack."""
        async def lane(lane_no: int) -> None:
            n = 0
            while not stop.is_set():
                slot = len(sent)
                sent.append("")
                sent[slot] = (await sender.send(f"lane {lane_no} #{n}", recipientId=recipient.id))["id"]
                n += 1
        await asyncio.gather(*(lane(i) for i in range(window)))

    load = asyncio.gather(pump(near, sent_near), pump(far, sent_far))
    remote_ids = lambda: {m["id"] for m in remote.of("message")}
    try:
        await until(lambda: len(sent_far) >= 20, "load is running")
        before = [i for i in sent_far[:20] if i]
        await until(lambda: set(before) <= remote_ids(), "cross-process delivery under load")
        redis_server.stop()
        for process in nginx.processes:                  # every process says so, and serves on
            await until(lambda process=process: _redis_is(process.base_url, "down"),
                        f"{process.base_url} reports redis down")
        code, health = await get_json(f"{nginx.nginx_url}/api/health")
        assert code == 200 and health["redis"] == "down"
        during = len(sent_far)
        await until(lambda: len(sent_far) >= during + 20, "sending goes on while Redis is down")
        redis_server.start()
        for process in nginx.processes:
            await until(lambda process=process: _redis_is(process.base_url, "up"),
                        f"{process.base_url} resubscribed", 30)
        resumed = len(sent_far)                          # sends begun after every process is back
        await until(lambda: len(sent_far) >= resumed + 20, "load after the restart")
    finally:
        stop.set()
        await load
        if redis_server.proc is None:
            redis_server.start()

    # Local delivery never stopped.
    await local.wait_until(lambda: len(local.of("message")) >= len(sent_near), 15)
    assert sorted(m["id"] for m in local.of("message")) == sorted(sent_near)
    # Across processes: delivery resumed once every process had resubscribed.
    after = set(sent_far[resumed:])
    await remote.wait_until(lambda: after <= remote_ids(), 15, "cross-process delivery resumed")
    # Nothing acknowledged is lost: the receiver's history holds every message, those published
    # while Redis was down too (a client catches up over REST).
    history: set[str] = set()
    for offset in range(0, len(sent_far) + 100, 100):
        page = await api.get("/api/chat/messages", token=far.access,
                             params={"recipientId": s.id, "limit": 100, "offset": offset})
        assert page.status == 200, page.body
        history |= {m["id"] for m in page.data}
    assert set(sent_far) <= history


async def _redis_is(base_url: str, state: str) -> bool:
    code, body = await get_json(f"{base_url}/api/health")
    return code == 200 and body.get("redis") == state


@pytest.mark.gen_test(timeout=240)
async def test_the_leader_dies_another_runs_the_outbox_and_sweeper_and_a_mail_goes_once(
        nginx, api, mail_sink):
    async def leaders() -> list[ServerProcess]:
        alive = [p for p in nginx.processes if p.alive()]
        return [p for p in alive if await leader_gauge(p) == 1.0]

    async def one_leader() -> bool:
        return len(await leaders()) == 1

    await until(one_leader, "exactly one process runs the background jobs")
    [leader] = await leaders()
    client = aioredis.Redis.from_url(nginx.redis_url, decode_responses=True)
    try:
        holder = await client.get(lease_key(nginx.key))
        assert holder.split(":")[1] == str(leader.process.pid)      # the key names the leader
        leader.kill()                                                  # SIGKILL: nothing released
        identity, response = await register(api)                       # mail queued meanwhile
        assert response.status == 201, response.body
        await until(one_leader, "another process took over", 30)
        [successor] = await leaders()
        assert successor is not leader and successor.alive()
        holder = await client.get(lease_key(nginx.key))
        assert holder.split(":")[1] == str(successor.process.pid)
    finally:
        await client.aclose()

    await mail_sink.wait_for(identity["email"], timeout=20)
    await asyncio.sleep(3)                       # three more outbox passes of every survivor
    assert len(mail_sink.messages_to(identity["email"])) == 1
    [row] = nginx.sql("SELECT sent_at, attempts FROM mail_outbox WHERE recipient = %s",
                      (identity["email"],))
    assert row["sent_at"] is not None and row["attempts"] == 1

    # The sweeper too: an expired story goes, swept by the new leader only.
    [user] = nginx.sql("SELECT id FROM users WHERE email = %s", (identity["email"],))
    story_id = str(uuid.uuid4())
    nginx.sql("INSERT INTO stories (id, user_id, caption, expires_at, created_at, updated_at)"
              " VALUES (%s, %s, 'old', NOW(3) - INTERVAL 1 HOUR, NOW(3) - INTERVAL 1 DAY,"
              " NOW(3) - INTERVAL 1 DAY)", (story_id, user["id"]))
    await until(lambda: not nginx.sql("SELECT id FROM stories WHERE id = %s", (story_id,)),
                "the expired story is swept", 20)
    swept = [p for p in nginx.processes if "sweep removed stories=1" in p.log_text()]
    assert swept == [successor]


def test_cluster_site_is_the_single_site_with_a_sticky_upstream():
    single = (DEPLOY / "nginx.conf").read_text()
    cluster = (DEPLOY / "nginx-cluster.conf").read_text()
    tail = "# WebSocket upgrade on /socket.io/"
    # Below the upstream block nothing differs: attachments (X-Accel), uploads, limits, timeouts.
    assert cluster[cluster.index(tail):] == single[single.index(tail):]
    upstream = cluster[cluster.index("upstream nexus_chat {"):cluster.index(tail)]
    assert "hash $remote_addr consistent;" in upstream
    assert len(re.findall(r"server 127\.0\.0\.1:300\d ", upstream)) == 3
    assert "proxy_set_header Upgrade $http_upgrade;" in cluster
    assert "proxy_read_timeout 90s;" in cluster         # above the 25 s ping interval + 20 s timeout
    assert "location /_nexus_attachments/ {" in cluster and "internal;" in cluster


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_template_unit_verifies(tmp_path):
    unit = (DEPLOY / "nexus-chat@.service").read_text()
    lines = unit.splitlines()
    for line in ("ExecStart=/srv/nexus-chat/.venv/bin/nexus-chat serve", "Environment=PORT=%i",
                 "Environment=NEXUS_REALTIME_ADAPTER=redis", "Restart=on-failure",
                 "KillSignal=SIGTERM", "EnvironmentFile=/etc/nexus-chat/env", "NoNewPrivileges=yes",
                 "ProtectSystem=strict"):
        assert line in lines, line
    [limit] = [line for line in lines if line.startswith("LimitNOFILE=")]
    assert int(limit.split("=")[1]) > 65536
    exe = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "nexus-chat"
    if not exe.exists():
        exe = Path(shutil.which("nexus-chat") or "/bin/true")
    (tmp_path / "nexus-chat@.service").write_text(unit.replace("/srv/nexus-chat/.venv/bin/nexus-chat", str(exe)))
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(tmp_path / "nexus-chat@3001.service")],
                            capture_output=True, text=True, cwd=tmp_path)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and "nexus-chat@" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr
