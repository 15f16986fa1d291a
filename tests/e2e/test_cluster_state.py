"""What several real `nexus-chat serve` processes share through a real Redis
(realtime.adapter = redis; docs/scaling.md), as users see it: presence across processes and
after a process is killed, membership changes and deleted accounts reaching every process's
checks, revoked sessions pushed to every process, rate limits counted once for the cluster
(and locally while Redis is down), and connection-state recovery on another process after a
crash, with the official socket.io-client."""
from __future__ import annotations

import asyncio
import os
import urllib.parse
import uuid

import pytest
import redis.asyncio

from .chat_support import ChatClient, make_group
from .cluster_support import TcpProxy, kill
from .server_process import ServerProcess
from .redis_support import private_redis_fixture
from .support import Api, make_user
from .recovery_support import RecoveringClient


redis_server = pytest.fixture(scope="module")(private_redis_fixture)


@pytest.fixture
def cluster(tmp_path, db_server, db_target, mail_sink, redis_server):
    """``cluster(n, **env)``: n processes on the test database and one Redis key of their own."""
    url = os.environ.get("NEXUS_TEST_REDIS_URL") or redis_server.url
    key = f"nexus-test-{uuid.uuid4().hex[:10]}"
    started: list[ServerProcess] = []

    def start(count: int, **env: str) -> list[ServerProcess]:
        # One workdir: the first process writes var/secrets.json, the JWT secrets all share.
        settings = dict(NEXUS_REALTIME_ADAPTER="redis", NEXUS_REDIS_URL=url, NEXUS_REDIS_KEY=key,
                        NEXUS_REDIS_PROCESS_TTL_S="3", NEXUS_RATE_LIMITS="false")
        settings.update(env)
        for _ in range(count):
            started.append(ServerProcess(tmp_path, db_server, mail_sink.port, database=db_target.name,
                                         log_name=f"server-{len(started)}.log", **settings))
        return started[-count:]

    start.redis_key = key
    start.redis_url = url
    start.started = started

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def slow_link(cluster, io_loop):
    """``await slow_link(**env)``: one more process whose link to Redis goes through a proxy;
    setting its ``lag_s`` holds back what Redis sends it (notices among them), as a busy or
    distant process would. What the cluster guarantees once a request is answered must hold
    there too."""
    proxies: list[TcpProxy] = []

    async def start(**env: str) -> tuple[ServerProcess, TcpProxy]:
        address = urllib.parse.urlsplit(cluster.redis_url)
        proxy = await TcpProxy(address.port).start()
        proxies.append(proxy)
        # Started in a thread: the proxy runs on this loop, and the process talks to Redis
        # through it while it starts.
        [process] = await asyncio.get_running_loop().run_in_executor(
            None, lambda: cluster(1, NEXUS_REDIS_URL=f"redis://127.0.0.1:{proxy.port}{address.path}", **env))
        ledger = redis.asyncio.Redis.from_url(cluster.redis_url)
        try:   # every process beats (is waited for) before the test begins
            await until(lambda: _alive_count(ledger, cluster.redis_key, len(cluster.started)),
                        "every process alive in the ledger")
        finally:
            await ledger.aclose()
        return process, proxy

    yield start

    async def close_all() -> None:
        for proxy in proxies:
            await proxy.close()
    io_loop.run_sync(close_all, timeout=15)


# What Redis sends the slow process is held this long: far longer than a request to that process
# takes, so that a change it had not applied when the request was answered would show, and well
# inside the bus's wait for acknowledgements (redis.ack_timeout_ms, 2 s by default).
LAG_S = 0.5


@pytest.fixture
def connect(io_loop):
    opened: list[ChatClient] = []

    async def open_client(process: ServerProcess, user, **kwargs) -> ChatClient:
        client = ChatClient(process.base_url, user, ["websocket"], **kwargs)
        opened.append(client)
        return await client.connect()

    yield open_client

    async def close_all() -> None:
        for client in opened:
            await client.close()
    io_loop.run_sync(close_all, timeout=15)


@pytest.fixture
def apis(io_loop):
    made: list[Api] = []

    def api_of(process: ServerProcess) -> Api:
        made.append(Api(process.base_url))
        return made[-1]

    yield api_of
    for api in made:
        api.close()


def statuses(client: ChatClient, user) -> list[str]:
    return [event["status"] for event in client.of("userStatusChanged") if event["userId"] == user.id]


async def stored_status(api: Api, viewer, user) -> str:
    found = await api.get(f"/api/users/search?q={user.username}", token=viewer.access)
    assert found.status == 200, found.body
    return [row for row in found.data if row["id"] == user.id][0]["status"]


async def until(check, what: str, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.1)


# ---- presence ---------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=120)
async def test_a_user_is_online_while_any_process_holds_a_socket(cluster, connect, apis, mail_sink):
    p1, p2, p3 = cluster(3)
    api = apis(p1)
    user, friend = await make_user(api, mail_sink, "u"), await make_user(api, mail_sink, "f")
    await make_group(api, friend, [user])           # co-members hear each other's presence
    watcher = await connect(p1, friend)

    on_two = await connect(p2, user)
    await watcher.wait_until(lambda: statuses(watcher, user) == ["online"], what="online")
    on_three = await connect(p3, user)               # a second process: no second "online"
    await on_two.close()                             # still on process 3: no "offline"
    await asyncio.sleep(0.5)
    assert await stored_status(apis(p2), friend, user) == "online"
    await on_three.close()
    await watcher.wait_until(lambda: statuses(watcher, user)[-1:] == ["offline"], what="offline")
    await asyncio.sleep(0.5)
    assert statuses(watcher, user) == ["online", "offline"]      # once per transition, cluster-wide
    assert await stored_status(api, friend, user) == "offline"


@pytest.mark.gen_test(timeout=120)
async def test_the_users_of_a_killed_process_go_offline_unless_another_process_holds_them(
        cluster, connect, apis, mail_sink):
    p1, p2, p3 = cluster(3)
    api = apis(p1)
    only_there, also_elsewhere, friend = [await make_user(api, mail_sink, p) for p in ("v", "u", "f")]
    await make_group(api, friend, [only_there, also_elsewhere])
    watcher = await connect(p1, friend)
    await connect(p2, only_there)
    await connect(p2, also_elsewhere)
    await connect(p3, also_elsewhere)
    await watcher.wait_until(lambda: statuses(watcher, only_there) == ["online"]
                             and statuses(watcher, also_elsewhere) == ["online"], what="both online")

    kill(p2)
    # redis.process_ttl_s = 3 here: the heartbeat expires, a live process reaps process 2
    await watcher.wait_until(lambda: statuses(watcher, only_there) == ["online", "offline"], timeout=30,
                             what="the killed process's user offline")
    await asyncio.sleep(0.5)
    assert statuses(watcher, also_elsewhere) == ["online"]       # still connected to process 3
    assert await stored_status(api, friend, only_there) == "offline"
    assert await stored_status(api, friend, also_elsewhere) == "online"


@pytest.mark.gen_test(timeout=120)
async def test_a_process_that_stops_takes_its_users_offline_at_once(cluster, connect, apis, mail_sink):
    # a heartbeat TTL of an hour: only the stopping process itself can tell
    p1, p2 = cluster(2, NEXUS_REDIS_PROCESS_TTL_S="3600")
    api = apis(p1)
    user, friend = await make_user(api, mail_sink, "u"), await make_user(api, mail_sink, "f")
    await make_group(api, friend, [user])
    watcher = await connect(p1, friend)
    await connect(p2, user)
    await watcher.wait_until(lambda: statuses(watcher, user) == ["online"], what="online")
    await asyncio.get_running_loop().run_in_executor(None, p2.stop)        # SIGTERM
    await watcher.wait_until(lambda: statuses(watcher, user) == ["online", "offline"], what="offline")
    assert await stored_status(api, friend, user) == "offline"


# ---- caches and revocations ---------------------------------------------------------------------
@pytest.mark.gen_test(timeout=120)
async def test_a_kick_holds_on_every_process_once_answered(cluster, slow_link, connect, apis, mail_sink):
    p1, p3 = cluster(2)
    p2, link = await slow_link()
    api = apis(p1)
    owner, member = await make_user(api, mail_sink, "o"), await make_user(api, mail_sink, "m")
    group_id = await make_group(api, owner, [member])
    client = await connect(p2, member, ignore=("userStatusChanged",))
    sender = await connect(p3, owner, ignore=("userStatusChanged",))
    await client.send("I am in", groupId=group_id)    # process 2 now knows the member
    await client.wait_until(lambda: len(client.of("message")) == 1, what="the member's own message")

    link.lag_s = LAG_S
    kicked = await api.delete(f"/api/groups/{group_id}/members/{member.id}", token=owner.access)
    assert kicked.status == 200, kicked.body
    # applied by every process before the kick was answered: no waiting from here on
    await sender.send("after the kick", groupId=group_id)       # from a third process
    ack = await client.call("sendMessage", {"content": "still in?", "groupId": group_id})
    assert not (isinstance(ack, dict) and ack.get("id")), f"a kicked member could post on process 2: {ack}"
    assert ack["statusCode"] == 403, ack
    # The owner's next words reach the member after the group message, if it was delivered at all.
    await sender.send("a word in private", recipientId=member.id)
    await client.wait_until(lambda: any(m["content"] == "a word in private" for m in client.of("message")),
                            what="the private message")
    assert [m["content"] for m in client.of("message")] == ["I am in", "a word in private"]

    invited = await api.post("/api/groups/invite", token=owner.access,
                             json={"groupId": group_id, "memberIds": [member.id]})
    assert invited.status == 201, invited.body
    assert await _posts(client, group_id)      # process 2 knows the member is back


async def _posts(client: ChatClient, group_id: str) -> bool:
    ack = await client.call("sendMessage", {"content": "back", "groupId": group_id})
    return isinstance(ack, dict) and bool(ack.get("id"))


@pytest.mark.gen_test(timeout=120)
async def test_a_deleted_account_is_refused_by_every_process_at_once(cluster, slow_link, connect, apis,
                                                                    mail_sink):
    [p1] = cluster(1)
    p2, link = await slow_link()
    api, api_two = apis(p1), apis(p2)
    victim, partner = await make_user(api, mail_sink, "v"), await make_user(api, mail_sink, "p")
    assert (await api_two.get("/api/groups/my-groups", token=victim.access)).status == 200
    socket_two = await connect(p2, victim)
    partner_two = await connect(p2, partner, ignore=("userStatusChanged",))
    await partner_two.send("hello", recipientId=victim.id)     # process 2 knows their conversation
    link.lag_s = LAG_S
    deleted = await api.delete("/api/auth/delete-account", json={"password": victim.password},
                               token=victim.access)
    assert deleted.status == 200, deleted.body
    # applied by every process before the deletion was answered: refused at once, no waiting
    assert (await api_two.get("/api/groups/my-groups", token=victim.access)).status == 401
    ack = await partner_two.call("sendMessage", {"content": "are you there?", "recipientId": victim.id})
    assert ack["statusCode"] == 404, ack      # the conversation is gone on process 2 as well
    # closed by process 2 before the answer; the close itself travels to the client
    await asyncio.wait_for(socket_two.disconnected.wait(), 5)


@pytest.mark.gen_test(timeout=120)
async def test_a_process_that_misses_a_deletion_is_fenced_and_catches_up(cluster, slow_link, apis,
                                                                         mail_sink):
    [p1] = cluster(1)
    p2, link = await slow_link()
    api, api_two = apis(p1), apis(p2)
    victim = await make_user(api, mail_sink, "v")
    assert (await api_two.get("/api/groups/my-groups", token=victim.access)).status == 200
    ledger = redis.asyncio.Redis.from_url(cluster.redis_url)
    try:
        assert await _alive(ledger, cluster.redis_key) == 2

        link.lag_s = 5.0        # past the bus's bound (2 s): process 2 does not acknowledge in time
        deleted = await api.delete("/api/auth/delete-account", json={"password": victim.password},
                                   token=victim.access)
        assert deleted.status == 200, deleted.body          # answered after the bound, not never
        assert await _alive(ledger, cluster.redis_key) == 1  # process 2 was taken for dead
        link.lag_s = 0
        link.cut()              # what it was sent is lost: only the kept notices can tell it now

        async def refused() -> bool:
            return (await api_two.get("/api/groups/my-groups", token=victim.access)).status == 401
        await until(refused, "process 2 replays the deletion it missed", 20)
        await until(lambda: _alive_count(ledger, cluster.redis_key, 2), "process 2 registered again", 20)
    finally:
        await ledger.aclose()


@pytest.mark.gen_test(timeout=120)
async def test_the_wait_for_acknowledgements_is_the_setting(cluster, slow_link, apis, mail_sink):
    """redis.ack_timeout_ms = 500: a process whose link lags 1.5 s (acknowledged in time with the
    default 2 s) is taken for dead after half a second, and the deletion answered then."""
    [p1] = cluster(1, NEXUS_REDIS_ACK_TIMEOUT_MS="500")
    p2, link = await slow_link()
    api = apis(p1)
    victim = await make_user(api, mail_sink, "v")
    ledger = redis.asyncio.Redis.from_url(cluster.redis_url)
    try:
        assert await _alive(ledger, cluster.redis_key) == 2
        link.lag_s = 1.5
        started = asyncio.get_running_loop().time()
        deleted = await api.delete("/api/auth/delete-account", json={"password": victim.password},
                                   token=victim.access)
        took = asyncio.get_running_loop().time() - started
        assert deleted.status == 200, deleted.body
        assert took < 1.4, took
        assert await _alive(ledger, cluster.redis_key) == 1  # process 2 was taken for dead
        link.lag_s = 0
    finally:
        await ledger.aclose()


async def _alive(ledger, key: str) -> int:
    procs = await ledger.smembers(key + ":nexus:procs")
    return sum([await ledger.exists(key + ":nexus:proc:" + p.decode()) for p in procs])


async def _alive_count(ledger, key: str, count: int) -> bool:
    return await _alive(ledger, key) == count


@pytest.mark.gen_test(timeout=120)
async def test_a_process_started_after_a_deletion_refuses_the_account(cluster, apis, mail_sink):
    [p1] = cluster(1)
    api = apis(p1)
    victim = await make_user(api, mail_sink, "v")
    deleted = await api.delete("/api/auth/delete-account", json={"password": victim.password},
                               token=victim.access)
    assert deleted.status == 200, deleted.body
    [p2] = cluster(1)                 # nobody told it: it reads the deletions kept in Redis
    assert (await apis(p2).get("/api/groups/my-groups", token=victim.access)).status == 401


@pytest.mark.gen_test(timeout=120)
async def test_a_revoked_session_is_pushed_to_every_process(cluster, slow_link, connect, apis, mail_sink):
    # the database poll is out of the picture: only the push can tell the other processes
    p1, p2 = cluster(2, NEXUS_REVOCATION_POLL_S="3600")
    p3, link = await slow_link(NEXUS_REVOCATION_POLL_S="3600")
    api = apis(p1)
    user = await make_user(api, mail_sink, "r")
    other_session = await api.post("/api/auth/login", json={"email": user.email, "password": user.password})
    assert other_session.status == 200
    kept_token = other_session.data["accessToken"]
    revoked_socket = await connect(p2, user)
    kept_socket = await connect(p2, user, auth={"token": kept_token})
    assert (await apis(p3).get("/api/groups/my-groups", token=user.access)).status == 200

    link.lag_s = LAG_S
    logout = await api.post("/api/auth/logout", token=user.access)
    assert logout.status == 200, logout.body
    # applied by every process before the logout was answered: refused at once, no waiting
    assert (await apis(p3).get("/api/groups/my-groups", token=user.access)).status == 401
    await asyncio.wait_for(revoked_socket.disconnected.wait(), 5)
    assert (await apis(p3).get("/api/groups/my-groups", token=kept_token)).status == 200
    assert not kept_socket.disconnected.is_set()     # the user's other session is untouched


# ---- rate limits ----------------------------------------------------------------------------
async def _login_statuses(api: Api, email: str, count: int, client_ip: str) -> list[int]:
    statuses_seen = []
    for _ in range(count):
        response = await api.post("/api/auth/login", json={"email": email, "password": "wrong-pass-1"},
                                  headers={"X-Forwarded-For": client_ip})
        statuses_seen.append(response.status)
    return statuses_seen


@pytest.mark.gen_test(timeout=120)
async def test_rate_limits_are_counted_once_for_all_processes(cluster, apis, redis_server):
    # login: 5 attempts per client IP and e-mail per minute (docs/api.md#limits)
    processes = cluster(3, NEXUS_RATE_LIMITS="1", NEXUS_LOGIN_FAILURES_PER_IP="1000")
    one, two, three = (apis(p) for p in processes)
    email, client_ip = f"nobody.{uuid.uuid4().hex[:8]}@example.test", "203.0.113.7"
    seen = (await _login_statuses(one, email, 2, client_ip) + await _login_statuses(two, email, 2, client_ip)
            + await _login_statuses(three, email, 1, client_ip))
    assert seen == [401] * 5
    assert await _login_statuses(one, email, 1, client_ip) == [429]
    assert await _login_statuses(three, email, 1, client_ip) == [429]

    if redis_server is None:
        return   # not our Redis to stop
    redis_server.stop()
    try:
        # Redis down: each process counts alone (at most the limit per process), never unlimited
        email = f"nobody.{uuid.uuid4().hex[:8]}@example.test"
        assert await _login_statuses(two, email, 6, client_ip) == [401] * 5 + [429]
    finally:
        redis_server.start()


# ---- connection-state recovery --------------------------------------------------------------
@pytest.mark.gen_test(timeout=150)
async def test_a_client_of_a_killed_process_recovers_on_another(cluster, connect, apis, mail_sink,
                                                                 node_client):
    p1, p2, p3 = cluster(3, NEXUS_RECOVERY="1")
    api = apis(p1)
    user, sender = await make_user(api, mail_sink, "u"), await make_user(api, mail_sink, "s")
    proxy = await TcpProxy(p2.port).start()        # the load balancer sends the client to process 2
    client = await RecoveringClient.start(node_client, proxy.url, user.access, delay_ms=300)
    try:
        first = await client.until(lambda item: item["type"] == "connect")
        assert first["recovered"] is False and first["pid"]
        writer = await connect(p3, sender, ignore=("userStatusChanged",))   # on a third process
        await writer.send("before the crash", recipientId=user.id)
        await client.until(lambda item: item["type"] == "event" and item["event"] == "message")

        proxy.target = None                      # no upstream while the process dies
        kill(p2)
        proxy.cut()
        await client.until(lambda item: item["type"] == "disconnect")
        for text in ("while away 1", "while away 2"):
            await writer.send(text, recipientId=user.id)
        proxy.target = p1.port                   # the balancer's next choice: process 1
        again = await client.until(lambda item: item["type"] == "connect", timeout=30)
        assert again["recovered"] is True and again["id"] == first["id"] and again["pid"] == first["pid"]
        await writer.send("after", recipientId=user.id)
        await client.until(lambda item: item["type"] == "event" and item["event"] == "message"
                           and item["args"][0]["content"] == "after")
        await asyncio.sleep(0.5)
        received = [item["args"][0]["content"] for item in client.seen
                    if item["type"] == "event" and item["event"] == "message"]
        assert received == ["before the crash", "while away 1", "while away 2", "after"]
    finally:
        client.proc.stdin.close()
        try:
            await asyncio.wait_for(client.proc.wait(), 5)
        except asyncio.TimeoutError:
            client.proc.kill()
        await proxy.close()


@pytest.mark.gen_test(timeout=120)
async def test_presence_is_rebuilt_after_a_redis_restart(cluster, connect, apis, mail_sink, redis_server):
    if redis_server is None:
        pytest.skip("NEXUS_TEST_REDIS_URL: not our server to restart")
    p1, p2, p3 = cluster(3)
    api = apis(p1)
    user, friend = await make_user(api, mail_sink, "u"), await make_user(api, mail_sink, "f")
    await make_group(api, friend, [user])
    watcher = await connect(p1, friend)
    on_two, on_three = await connect(p2, user), await connect(p3, user)
    await watcher.wait_until(lambda: statuses(watcher, user) == ["online"], what="online")

    redis_server.stop()
    await asyncio.sleep(1)
    redis_server.start()                      # empty: no ledger, no heartbeats
    ledger = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        await until(lambda: _holders(ledger, cluster.redis_key, user, 2), "both processes registered the user again", 20)
    finally:
        await ledger.aclose()
    await on_two.close()                      # still on process 3: nobody is told "offline"
    await asyncio.sleep(1)
    assert "offline" not in statuses(watcher, user)
    await on_three.close()
    await watcher.wait_until(lambda: statuses(watcher, user)[-1:] == ["offline"], what="offline")
    assert statuses(watcher, user).count("offline") == 1
    assert await stored_status(api, friend, user) == "offline"


async def _holders(ledger, key: str, user, count: int) -> bool:
    key = key + ":nexus:where:" + user.id
    return await ledger.scard(key) == count
