"""Reactions (issue 12): one per user, message and emoji, whatever the retries; a small delta
event to every socket of every participant, once; the same answer on REST and the ack."""
from __future__ import annotations

import asyncio
import urllib.parse
import uuid

import pymysql
import pytest

from .chat_support import NO_PRESENCE, make_group, quiet
from .support import assert_error

THUMBS = "\U0001F44D"
HEART = "\u2764\uFE0F"


async def connect(chat, *users):
    return [await chat(user, ["websocket"], ignore=NO_PRESENCE) for user in users]


def reaction_path(message_id: str, emoji: str) -> str:
    return f"/api/chat/messages/{message_id}/reactions/{urllib.parse.quote(emoji, safe='')}"


def rows_of(db_target, message_id: str) -> int:
    conn = pymysql.connect(host=db_target.host, port=db_target.port, user=db_target.user,
                           password=db_target.password, database=db_target.name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM message_reactions r JOIN messages m ON m.seq = r.message_seq"
                        " WHERE m.id = %s", (message_id,))
            return cur.fetchone()[0]
    finally:
        conn.close()


@pytest.mark.gen_test(timeout=60)
async def test_reactions_are_idempotent_and_told_as_deltas(api, user_factory, chat):
    owner, m1, m2, outsider = [await user_factory(p) for p in ("o", "m1", "m2", "x")]
    group_id = await make_group(api, owner, [m1, m2])
    co, c1, c1b, c2, cx = await connect(chat, owner, m1, m1, m2, outsider)
    sent = await co.send("react to me", groupId=group_id)
    for client in (co, c1, c1b, c2):
        await client.expect("message")

    ack = await c1.call("reactToMessage", {"messageId": sent["id"], "emoji": THUMBS, "react": True})
    assert ack["id"] == sent["id"]
    assert ack["reactions"] == [{"emoji": THUMBS, "count": 1, "userIds": [m1.id], "reactedByMe": True}]
    delta = {"messageId": sent["id"], "conversationId": None, "groupId": group_id, "emoji": THUMBS,
             "userId": m1.id, "react": True, "count": 1}
    for client in (co, c1, c1b, c2):
        assert await client.expect("messageReaction") == [delta]
    # a retry answers the same and tells nobody
    assert await c1b.call("reactToMessage", {"messageId": sent["id"], "emoji": THUMBS, "react": True}) == ack
    await quiet(co, c1, c1b, c2, cx)

    response = await api.put(reaction_path(sent["id"], THUMBS), token=m2.access)
    assert response.status == 200, response.body
    assert set(response.data) == set(ack)
    assert response.data["reactions"] == [{"emoji": THUMBS, "count": 2, "userIds": [m1.id, m2.id],
                                           "reactedByMe": True}]
    for client in (co, c1, c1b, c2):
        assert await client.expect("messageReaction") == [{**delta, "userId": m2.id, "count": 2}]
    response = await api.put(reaction_path(sent["id"], ":tada:"), token=owner.access)
    assert response.status == 200, response.body
    for client in (co, c1, c1b, c2):
        await client.expect("messageReaction")

    history = await co.call("getMessages", {"groupId": group_id})
    assert history[0]["reactions"] == [
        {"emoji": THUMBS, "count": 2, "userIds": [m1.id, m2.id], "reactedByMe": False},
        {"emoji": ":tada:", "count": 1, "userIds": [owner.id], "reactedByMe": True}]

    removed = await api.delete(reaction_path(sent["id"], THUMBS), token=m1.access)
    assert removed.status == 200, removed.body
    assert removed.data["reactions"][0] == {"emoji": THUMBS, "count": 1, "userIds": [m2.id], "reactedByMe": False}
    for client in (co, c1, c1b, c2):
        assert await client.expect("messageReaction") == [{**delta, "react": False, "count": 1}]
    again = await c1.call("reactToMessage", {"messageId": sent["id"], "emoji": THUMBS, "react": False})
    assert again == removed.data
    await quiet(co, c1, c1b, c2, cx)


@pytest.mark.gen_test(timeout=60)
async def test_ten_concurrent_identical_reactions_make_one(api, user_factory, chat, db_target):
    a, b = await user_factory("a"), await user_factory("b")
    ca, cb, cb2 = await connect(chat, a, b, b)
    sent = await ca.send("once", recipientId=b.id)
    await cb.expect("message")
    await cb2.expect("message")
    answers = await asyncio.gather(
        *[api.put(reaction_path(sent["id"], HEART), token=b.access) for _ in range(5)],
        *[cb.call("reactToMessage", {"messageId": sent["id"], "emoji": HEART, "react": True})
          for _ in range(5)])
    for answer in answers[:5]:
        assert answer.status == 200, answer.body
        assert answer.data["reactions"] == [{"emoji": HEART, "count": 1, "userIds": [b.id], "reactedByMe": True}]
    for answer in answers[5:]:
        assert answer["reactions"] == answers[0].data["reactions"]
    assert rows_of(db_target, sent["id"]) == 1
    for client in (ca, cb, cb2):   # one change, told once to each socket
        [delta] = await client.expect("messageReaction")
        assert delta["count"] == 1 and delta["react"] is True and delta["conversationId"] == sent["conversationId"]
    await quiet(ca, cb, cb2)


@pytest.mark.gen_test(timeout=60)
async def test_bad_emoji_and_the_limit_of_twenty(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca, cb = await connect(chat, a, b)
    sent = await ca.send("emoji", recipientId=b.id)
    await cb.expect("message")
    for bad in ("a", "ab", THUMBS * 2, "x" + THUMBS, THUMBS + "\u200d", "\ufe0f", ":" + "a" * 31 + ":", "::",
                ":Upper:", ":a:b:", " ",
                # stacked modifiers or selectors draw as 👍 but would be other emoji; half a flag
                THUMBS + "\U0001F3FD" * 2, THUMBS + "\ufe0f\ufe0f", THUMBS + "\U0001F3FD\ufe0f\ufe0f",
                THUMBS + "\u0301", "\U0001F1EB"):
        body = assert_error(await api.put(reaction_path(sent["id"], bad), token=b.access), 400)
        assert body["errors"], bad
    for bad in ({"messageId": sent["id"], "emoji": "no", "react": True},
                {"messageId": sent["id"], "emoji": THUMBS},
                {"messageId": sent["id"], "emoji": THUMBS, "react": "yes please"},
                {"emoji": THUMBS, "react": True}):
        answer = await cb.call("reactToMessage", bad)
        assert answer["statusCode"] == 400, (bad, answer)
        await cb.expect("exception")
    # one grapheme cluster, however many code points: flags, families, skin tones, keycaps
    good = ["\U0001F1EB\U0001F1F7", "\U0001F468\u200D\U0001F469\u200D\U0001F467", "\U0001F44D\U0001F3FD",
            "1\uFE0F\u20E3", ":" + "a" * 30 + ":", ":+1:", "\U0001F3F3\uFE0F\u200D\U0001F308",
            "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"]
    good += [chr(0x1F600 + i) for i in range(20 - len(good))]
    for emoji in good:
        response = await api.put(reaction_path(sent["id"], emoji), token=b.access)
        assert response.status == 200, (emoji, response.body)
    assert [r["emoji"] for r in response.data["reactions"]] == good
    body = assert_error(await api.put(reaction_path(sent["id"], THUMBS), token=a.access), 400)
    assert "20" in body["message"]
    # an emoji already there can still be added by someone else
    assert (await api.put(reaction_path(sent["id"], good[0]), token=a.access)).status == 200


@pytest.mark.gen_test(timeout=60)
async def test_outsiders_and_former_members_cannot_react_and_hear_nothing(api, user_factory, chat, db_target):
    owner, member, kicked, leaver, outsider = [await user_factory(p) for p in ("o", "m", "k", "l", "x")]
    group_id = await make_group(api, owner, [member, kicked, leaver])
    co, cm, ck, cl, cx = await connect(chat, owner, member, kicked, leaver, outsider)
    sent = await cm.send("members only", groupId=group_id)
    for client in (co, cm, ck, cl):
        await client.expect("message")
    assert (await api.delete(f"/api/groups/{group_id}/members/{kicked.id}", token=owner.access)).status == 200
    assert (await api.post(f"/api/groups/{group_id}/leave", token=leaver.access)).status == 200

    for user, client in ((kicked, ck), (leaver, cl), (outsider, cx)):
        assert_error(await api.put(reaction_path(sent["id"], THUMBS), token=user.access), 404, "Message not found")
        answer = await client.call("reactToMessage", {"messageId": sent["id"], "emoji": THUMBS, "react": True})
        assert answer["statusCode"] == 404
        await client.expect("exception")
    assert_error(await api.put(reaction_path(str(uuid.uuid4()), THUMBS), token=owner.access), 404)
    assert rows_of(db_target, sent["id"]) == 0

    # the members' reactions are not told to those who left
    assert (await api.put(reaction_path(sent["id"], THUMBS), token=owner.access)).status == 200
    for client in (co, cm):
        await client.expect("messageReaction")
    await quiet(ck, cl, cx)


@pytest.mark.gen_test(timeout=60)
async def test_a_deleted_message_loses_its_reactions(api, user_factory, chat, db_target):
    a, b = await user_factory("a"), await user_factory("b")
    ca, cb = await connect(chat, a, b)
    sent = await ca.send("soon gone", recipientId=b.id)
    await cb.expect("message")
    for user in (a, b):
        assert (await api.put(reaction_path(sent["id"], THUMBS), token=user.access)).status == 200
    assert rows_of(db_target, sent["id"]) == 2
    tombstone = await ca.call("deleteMessage", {"messageId": sent["id"]})
    assert tombstone["reactions"] == [] and tombstone["content"] == ""
    assert rows_of(db_target, sent["id"]) == 0
    assert_error(await api.put(reaction_path(sent["id"], THUMBS), token=b.access), 409)
    answer = await cb.call("reactToMessage", {"messageId": sent["id"], "emoji": THUMBS, "react": False})
    assert answer["statusCode"] == 409
    history = await cb.call("getMessages", {"recipientId": a.id})
    assert history[0]["reactions"] == [] and history[0]["deletedBy"] == a.id


@pytest.mark.gen_test(timeout=60)
async def test_user_ids_list_the_first_ten_in_reaction_order(api, user_factory, chat, db_target):
    owner, member = await user_factory("o"), await user_factory("m")
    group_id = await make_group(api, owner, [member])
    co, cm = await connect(chat, owner, member)
    sent = await co.send("popular", groupId=group_id)
    await cm.expect("message")
    # twelve more members react, one after the other (written straight to the database:
    # registering twelve accounts by mail would only test registration)
    conn = pymysql.connect(host=db_target.host, port=db_target.port, user=db_target.user,
                           password=db_target.password, database=db_target.name, autocommit=True)
    ids = [str(uuid.uuid4()) for _ in range(12)]
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT seq FROM messages WHERE id = %s", (sent["id"],))
            seq = cur.fetchone()[0]
            for i, uid in enumerate(ids):
                cur.execute("INSERT INTO users (id, username, full_name, email, password_hash, created_at,"
                            " updated_at) VALUES (%s, %s, 'R', %s, 'x', NOW(3), NOW(3))",
                            (uid, f"r_{uid[:12]}", f"{uid}@example.test"))
                cur.execute("INSERT INTO group_members (group_id, user_id, role, joined_at)"
                            " VALUES (%s, %s, 'member', NOW(3))", (group_id, uid))
                cur.execute("INSERT INTO message_reactions (message_seq, emoji, user_id, created_at)"
                            " VALUES (%s, %s, %s, NOW(3) - INTERVAL %s SECOND)", (seq, THUMBS, uid, 60 - i))
    finally:
        conn.close()
    response = await api.put(reaction_path(sent["id"], THUMBS), token=member.access)
    assert response.status == 200, response.body
    [reaction] = response.data["reactions"]
    assert reaction["count"] == 13 and reaction["reactedByMe"] is True
    assert reaction["userIds"] == ids[:10]        # the first ten, in the order they reacted
    history = await co.call("getMessages", {"groupId": group_id})
    assert history[0]["reactions"] == [{**reaction, "reactedByMe": False}]
    # the member is the 13th: not among the ten listed, and still told they reacted
    history = await cm.call("getMessages", {"groupId": group_id})
    assert history[0]["reactions"] == [reaction]


@pytest.mark.gen_test(timeout=60)
async def test_a_deleted_account_takes_its_reactions_along(api, user_factory, chat):
    owner, leaver, stayer = await user_factory("o"), await user_factory("l"), await user_factory("s")
    group_id = await make_group(api, owner, [leaver, stayer])
    [co] = await connect(chat, owner)
    sent = await co.send("react to this", groupId=group_id)
    for user, emoji in ((leaver, THUMBS), (stayer, THUMBS), (leaver, HEART)):
        response = await api.put(reaction_path(sent["id"], emoji), token=user.access)
        assert response.status == 200, response.body
    response = await api.delete("/api/auth/delete-account", json={"password": leaver.password},
                                token=leaver.access)
    assert response.status == 200, response.body
    history = await api.get(f"/api/chat/messages?groupId={group_id}", token=owner.access)
    assert history.data[0]["reactions"] == [
        {"emoji": THUMBS, "count": 1, "userIds": [stayer.id], "reactedByMe": False}]


@pytest.mark.gen_test(timeout=60)
async def test_a_summary_in_the_old_form_still_answers(api, user_factory, chat, db_target):
    """A process older than migration 013 (a rolling upgrade) writes the summary in 010's form
    ([emoji, count, "first,user,ids", first at]): history still answers Reactions."""
    owner, member = [await user_factory(p) for p in ("o", "m")]
    group_id = await make_group(api, owner, [member])
    [co] = await connect(chat, owner)
    sent = await co.send("old form", groupId=group_id)
    conn = pymysql.connect(host=db_target.host, port=db_target.port, user=db_target.user,
                           password=db_target.password, database=db_target.name, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE messages SET reactions_summary = %s WHERE id = %s",
                        (f'[["{HEART}", 2, "{owner.id},{member.id}", "2026-01-02 03:04:05.000"]]', sent["id"]))
    finally:
        conn.close()
    response = await api.get(f"/api/chat/messages?groupId={group_id}", token=member.access)
    assert response.status == 200, response.body
    assert response.data[0]["reactions"] == [
        {"emoji": HEART, "count": 2, "userIds": [owner.id, member.id], "reactedByMe": True}]
