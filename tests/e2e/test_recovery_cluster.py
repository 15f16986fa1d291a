"""Connection-state recovery with several real `nexus-chat serve` processes on a real Redis
(docs/scaling.md#connection-state-recovery): events of different processes reach a socket in
an order that is not their order in the event log, and recovery must still replay exactly
what the client missed, with the official socket.io-client."""
from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit

import pytest

from .chat_support import make_group
from .cluster_support import TcpProxy
from .recovery_support import RecoveringClient, hold, newest, resume, row_lock
from .support import make_user
from .test_cluster_state import apis, cluster, connect, redis_server  # noqa: F401 (fixtures)


def contents(client: RecoveringClient, since: int = 0) -> list[str]:
    return [args[0]["content"] for args in client.messages(since)]


def redis_port(redis_server) -> int:
    return urlsplit(os.environ.get("NEXUS_TEST_REDIS_URL") or redis_server.url).port or 6379


@pytest.mark.gen_test(timeout=150)
async def test_an_event_published_late_by_another_process_is_not_skipped(
        cluster, connect, apis, mail_sink, node_client, db_target, redis_server):  # noqa: F811
    """Process A stores a message first but its Redis publish is held; process B's later
    message reaches the client (on B) first. The client drops, A's message then arrives while
    it is away: recovering with the offset of B's message must still bring A's, once."""
    redis = TcpProxy(redis_port(redis_server))     # A's way to Redis, which the test can hold
    await redis.start()
    # A heartbeat TTL far longer than the hold: A stays alive for the others meanwhile.
    [a] = cluster(1, NEXUS_RECOVERY="1", NEXUS_REDIS_PROCESS_TTL_S="30",
                  NEXUS_REDIS_URL=f"redis://127.0.0.1:{redis.port}")
    [b] = cluster(1, NEXUS_RECOVERY="1", NEXUS_REDIS_PROCESS_TTL_S="30")
    api = apis(b)
    user = await make_user(api, mail_sink, "u")
    on_a, on_b = await make_user(api, mail_sink, "sa"), await make_user(api, mail_sink, "sb")
    group = await make_group(api, on_b, [user, on_a])
    client = await RecoveringClient.start(node_client, b.base_url, user.access)
    try:
        assert (await client.until(lambda i: i["type"] == "connect"))["recovered"] is False
        sender_a = await connect(a, on_a, ignore=("userStatusChanged",))
        sender_b = await connect(b, on_b, ignore=("userStatusChanged",))
        await sender_a.send("warm-up", groupId=group)      # both ways work before the hold
        await client.wait(lambda: contents(client) == ["warm-up"])

        redis.stall()
        early = await sender_a.send("stored first", groupId=group)    # acked: stored, logged
        await sender_b.send("stored second", groupId=group)
        await client.wait(lambda: contents(client) == ["warm-up", "stored second"])
        await hold(client, db_target)             # the client drops with B's offset as its last
        redis.flow()                              # A's message now reaches B: nobody to get it
        await sender_b.wait_until(lambda: any(args[0]["id"] == early["id"] for args in sender_b.of("message")),
                                  timeout=10, what="A's message on B")

        mark = len(client.seen)
        again = await resume(client)
        assert again["type"] == "connect" and again["recovered"] is True
        await sender_b.send("after", groupId=group)
        await client.wait(lambda: "after" in contents(client, mark))
        assert sorted(contents(client, mark)) == sorted(["stored first", "after"])
        assert contents(client, mark)[-1] == "after"
    finally:
        redis.flow()
        await client.close()
        await redis.close()


@pytest.mark.gen_test(timeout=150)
async def test_a_client_ahead_of_the_process_it_recovers_on_gets_nothing_twice(
        cluster, connect, apis, mail_sink, node_client, db_target, redis_server):  # noqa: F811
    """The client saw on B a message that has not reached C yet (C's Redis link is held) and
    recovers on C: C waits for it instead of replaying without it and then delivering it
    live a second time. Offsets the client gets afterwards never go back."""
    redis = TcpProxy(redis_port(redis_server))     # C's way to Redis
    await redis.start()
    a, b = cluster(2, NEXUS_RECOVERY="1", NEXUS_REDIS_PROCESS_TTL_S="30")
    [c] = cluster(1, NEXUS_RECOVERY="1", NEXUS_REDIS_PROCESS_TTL_S="30",
                  NEXUS_REDIS_URL=f"redis://127.0.0.1:{redis.port}")
    api = apis(a)
    user, sender = await make_user(api, mail_sink, "u"), await make_user(api, mail_sink, "s")
    balancer = await TcpProxy(b.port).start()
    client = await RecoveringClient.start(node_client, balancer.url, user.access)
    try:
        await client.until(lambda i: i["type"] == "connect")
        writer = await connect(a, sender, ignore=("userStatusChanged",))
        watcher = await connect(c, sender, ignore=("userStatusChanged",))   # shows what reached C
        await writer.send("warm-up", recipientId=user.id)
        await client.wait(lambda: contents(client) == ["warm-up"])
        await watcher.wait_for("message", 1, timeout=10)

        redis.stall()
        await writer.send("seen on B", recipientId=user.id)
        await client.wait(lambda: contents(client) == ["warm-up", "seen on B"])
        seen = newest(client.messages()[-1][-1])
        await hold(client, db_target)
        balancer.target = c.port
        mark = len(client.seen)
        await client.command("resume")
        waits = "waits for events the client has from other processes"
        deadline = asyncio.get_running_loop().time() + 15
        while waits not in c.log_text():        # C holds the recovery until "seen on B" is there
            assert asyncio.get_running_loop().time() < deadline, "C never waited"
            await asyncio.sleep(0.05)
        redis.flow()
        again = await client.until(lambda i: i["type"] in ("connect", "connect_error"), timeout=15)
        assert again["type"] == "connect" and again["recovered"] is True
        await writer.send("after", recipientId=user.id)
        await client.wait(lambda: "after" in contents(client, mark))
        assert contents(client, mark) == ["after"]
        assert newest(client.messages()[-1][-1]) > seen
    finally:
        redis.flow()
        await client.close()
        await balancer.close()
        await redis.close()


@pytest.mark.gen_test(timeout=150)
async def test_an_event_committed_late_by_another_process_is_not_skipped(
        cluster, connect, apis, mail_sink, node_client, db_target):  # noqa: F811
    """A's event-log transaction takes its offset, then waits for a lock while B stores a
    later offset, commits and delivers it to the client (on B). The client drops; A commits;
    recovering with B's offset must bring A's event, once."""
    a, b = cluster(2, NEXUS_RECOVERY="1")
    api = apis(b)
    user = await make_user(api, mail_sink, "u")
    on_a, on_b = await make_user(api, mail_sink, "sa"), await make_user(api, mail_sink, "sb")
    # Two groups; A's event goes to the one whose id sorts first, whose event_log_targets
    # rows the test locks (with the gap after them, up to the other group's first row).
    held, free = sorted([await make_group(api, on_b, [user, on_a]), await make_group(api, on_b, [user, on_a])])
    client = await RecoveringClient.start(node_client, b.base_url, user.access)
    try:
        await client.until(lambda i: i["type"] == "connect")
        sender_a = await connect(a, on_a, ignore=("userStatusChanged",))
        sender_b = await connect(b, on_b, ignore=("userStatusChanged",))
        await sender_a.send("warm-up", groupId=held)
        await sender_b.send("warm-up too", groupId=free)          # the other group has a row
        await client.wait(lambda: contents(client) == ["warm-up", "warm-up too"])

        lock_sql = "SELECT * FROM event_log_targets WHERE target_id = %s FOR UPDATE"
        async with row_lock(db_target, lock_sql, (held,)) as lock:
            late = asyncio.ensure_future(sender_a.send("offset first, committed late", groupId=held))
            await lock.waited_on()                                 # A's offset is taken, uncommitted
            await sender_b.send("offset second, committed first", groupId=free)
            await client.wait(lambda: contents(client)[-1] == "offset second, committed first")
            await hold(client, db_target)
        await late
        await sender_b.wait_until(lambda: any(args[0]["content"] == "offset first, committed late"
                                              for args in sender_b.of("message")), timeout=10, what="A's on B")
        mark = len(client.seen)
        again = await resume(client)
        assert again["type"] == "connect" and again["recovered"] is True
        await sender_b.send("after", groupId=free)
        await client.wait(lambda: "after" in contents(client, mark))
        assert contents(client, mark) == ["offset first, committed late", "after"]
    finally:
        await client.close()


@pytest.mark.gen_test(timeout=150)
async def test_a_process_started_after_the_clients_last_event_recovers_it(
        cluster, connect, apis, mail_sink, node_client, db_target):  # noqa: F811
    """C starts after A's last event reached the client on B (which then stops): C never
    received that event, and learns from the marks in Redis that it never will, so the client
    recovers on C at once, and the events it missed meanwhile (from another process, so that
    nothing of A reaches C after it started) come once."""
    a, b = cluster(2, NEXUS_RECOVERY="1")
    api = apis(a)
    user, sender = await make_user(api, mail_sink, "u"), await make_user(api, mail_sink, "s")
    other = await make_user(api, mail_sink, "o")
    balancer = await TcpProxy(b.port).start()
    client = await RecoveringClient.start(node_client, balancer.url, user.access)
    try:
        await client.until(lambda i: i["type"] == "connect")
        writer = await connect(a, sender, ignore=("userStatusChanged",))
        await writer.send("seen on B", recipientId=user.id)
        await client.wait(lambda: contents(client) == ["seen on B"])
        await hold(client, db_target)
        [c] = cluster(1, NEXUS_RECOVERY="1")
        on_b = await connect(b, other, ignore=("userStatusChanged",))
        await on_b.send("missed", recipientId=user.id)
        balancer.target = c.port
        mark = len(client.seen)
        again = await resume(client)
        assert again["type"] == "connect" and again["recovered"] is True
        assert "waits for events the client has" not in c.log_text()
        await on_b.send("after", recipientId=user.id)
        await client.wait(lambda: "after" in contents(client, mark))
        assert contents(client, mark) == ["missed", "after"]
    finally:
        await client.close()
        await balancer.close()
