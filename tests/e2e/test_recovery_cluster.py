"""Connection-state recovery with several real `nexus-chat serve` processes on a real Redis
(docs/scaling.md#connection-state-recovery): events of different processes reach a socket in
an order that is not their order in the event log, and recovery must still replay exactly
what the client missed, with the official socket.io-client."""
from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from .chat_support import make_group
from .cluster_support import TcpProxy
from .recovery_support import RecoveringClient, hold, resume
from .support import make_user
from .test_cluster_state import apis, cluster, connect, redis_server  # noqa: F401 (fixtures)


def contents(client: RecoveringClient, since: int = 0) -> list[str]:
    return [args[0]["content"] for args in client.messages(since)]


@pytest.mark.gen_test(timeout=150)
async def test_an_event_published_late_by_another_process_is_not_skipped(
        cluster, connect, apis, mail_sink, node_client, db_target, redis_server):  # noqa: F811
    """Process A stores a message first but its Redis publish is held; process B's later
    message reaches the client (on B) first. The client drops, A's message then arrives while
    it is away: recovering with the offset of B's message must still bring A's, once."""
    url = urlsplit(os.environ.get("NEXUS_TEST_REDIS_URL") or redis_server.url)
    redis = TcpProxy(url.port or 6379)      # A's way to Redis, which the test can hold
    await redis.start()
    [a] = cluster(1, NEXUS_RECOVERY="1", NEXUS_REDIS_URL=f"redis://127.0.0.1:{redis.port}")
    [b] = cluster(1, NEXUS_RECOVERY="1")
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
