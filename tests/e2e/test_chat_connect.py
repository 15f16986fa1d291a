"""What a /chat CONNECT reads (docs/realtime.md#connecting-to-chat): the account and its groups
in one query, read together for the CONNECTs that arrive at once, and never staler than the
rooms it joins."""
from __future__ import annotations

import asyncio

import pytest

from .chat_support import make_group, quiet


@pytest.mark.gen_test(timeout=60)
async def test_connects_at_once_each_join_their_own_groups(api, user_factory, chat, runtime):
    owner, a, b, outsider, gone = [await user_factory(p) for p in ("own", "a", "b", "out", "gone")]
    group_id = await make_group(api, owner, [a, b])
    # The account vanished from the database behind this process's back (another process
    # deleted it): its still valid token must not connect.
    await runtime.ctx.db.execute("DELETE FROM users WHERE id = %s", (gone.id,))

    clients = await asyncio.gather(*(chat(u, ["websocket"], ignore=("userStatusChanged",))
                                     for u in (owner, a, b, outsider, a)))
    refused = await chat(gone, ["websocket"], wait=False)
    with pytest.raises(Exception):
        await refused.connect()
    assert refused.connect_errors[-1]["message"] == "Unauthorized"

    c_owner, c_a, c_b, c_out, c_a2 = clients
    sent = await c_owner.send("to the group", groupId=group_id)
    for member in (c_owner, c_a, c_b, c_a2):
        assert await member.expect("message") == [sent]
    await quiet(c_out)


@pytest.mark.gen_test(timeout=60)
async def test_a_membership_change_after_the_read_is_not_missed(api, user_factory, runtime):
    owner, a = await user_factory("own"), await user_factory("a")
    reads = runtime.sockets.chat.reads
    first = await make_group(api, owner, [a])
    _, account = await reads.authenticate(a.access)
    assert await reads.group_ids(a.id, account) == [first]

    second = await make_group(api, owner, [a])   # after the read, before the rooms are joined
    assert sorted(await reads.group_ids(a.id, account)) == sorted([first, second])
