"""Message search (GET /api/chat/search): a user finds only messages of their own
conversations and current groups; what they type is taken literally; paging returns each hit
once; snippets are escaped HTML with the matches marked."""
from __future__ import annotations

import pytest

from nexus_chat.searchtext import boolean_query, search_terms, snippet

from .chat_support import make_group
from .support import assert_error


async def search(api, user, q, **params):
    response = await api.get("/api/chat/search", params={"q": q, **params}, token=user.access)
    assert response.status == 200, response.body
    return response.data


def contents(page) -> list[str]:
    return [hit["message"]["content"] for hit in page["results"]]


@pytest.mark.gen_test(timeout=60)
async def test_only_your_conversations_and_current_groups(api, user_factory, chat):
    a, b, c, d = [await user_factory(n) for n in "abcd"]
    ca, cc = await chat(a, ["websocket"]), await chat(c, ["websocket"])
    await ca.send("quarterly report for b", recipientId=b.id)
    await cc.send("quarterly report between c and d", recipientId=d.id)
    shared = await make_group(api, a, [b, c], name="Finance")
    hidden = await make_group(api, c, [d])
    await ca.send("quarterly report in the shared group", groupId=shared)
    await cc.send("quarterly report in the hidden group", groupId=hidden)

    page = await search(api, a, "quarterly")
    assert contents(page) == ["quarterly report in the shared group", "quarterly report for b"]
    group_hit, direct_hit = page["results"]
    assert group_hit["group"] == {"id": shared, "name": "Finance", "iconUrl": None}
    assert group_hit["conversation"] is None
    assert direct_hit["group"] is None and direct_hit["conversation"]["partner"]["id"] == b.id
    assert direct_hit["conversation"]["id"] == direct_hit["message"]["conversationId"]
    assert direct_hit["message"]["sender"]["id"] == a.id
    assert page["hasMore"] is False and page["nextBefore"] is None

    assert contents(await search(api, c, "quarterly")) == [
        "quarterly report in the hidden group", "quarterly report in the shared group",
        "quarterly report between c and d"]
    # the partner seen from the other side is the other user
    d_hits = (await search(api, d, "quarterly"))["results"]
    assert [h["conversation"]["partner"]["id"] for h in d_hits if h["conversation"]] == [c.id]

    # narrowed to one conversation or one group
    assert contents(await search(api, a, "quarterly", recipientId=b.id)) == ["quarterly report for b"]
    assert contents(await search(api, a, "quarterly", recipientId=d.id)) == []
    assert contents(await search(api, a, "quarterly", groupId=shared)) == [
        "quarterly report in the shared group"]
    response = await api.get("/api/chat/search", params={"q": "quarterly", "groupId": hidden},
                             token=a.access)
    assert_error(response, 403)

    # kicked or gone: the group's messages are no longer found
    kicked = await api.delete(f"/api/groups/{shared}/members/{c.id}", token=a.access)
    assert kicked.status == 200, kicked.body
    assert contents(await search(api, c, "quarterly")) == [
        "quarterly report in the hidden group", "quarterly report between c and d"]
    left = await api.post(f"/api/groups/{shared}/leave", token=b.access)
    assert left.status == 200, left.body
    assert contents(await search(api, b, "quarterly")) == ["quarterly report for b"]
    assert_error(await api.get("/api/chat/search", params={"q": "quarterly", "groupId": shared},
                               token=b.access), 403)


@pytest.mark.gen_test(timeout=60)
async def test_operators_and_wildcards_are_literal(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca = await chat(a, ["websocket"])
    for text in ["apple pie", "app store", "apple -banana", "banana split", "e-mail me later"]:
        await ca.send(text, recipientId=b.id)

    assert contents(await search(api, b, "app*")) == ["app store"]              # no wildcard
    assert contents(await search(api, b, "apple -banana")) == ["apple -banana"]  # no NOT
    assert contents(await search(api, b, "apple")) == ["apple -banana", "apple pie"]
    assert contents(await search(api, b, '"apple')) == ["apple -banana", "apple pie"]
    assert contents(await search(api, b, "+apple +(pie")) == ["apple pie"]
    assert contents(await search(api, b, "apple ~banana <split")) == []           # every word required
    assert contents(await search(api, b, "e-mail")) == ["e-mail me later"]
    assert contents(await search(api, b, "APPLE PIE")) == ["apple pie"]          # case-insensitive
    # nothing searchable: operators only, or only words the index leaves out
    assert await search(api, b, '@@ ** "" ()') == {"results": [], "hasMore": False, "nextBefore": None}
    assert contents(await search(api, b, "the")) == []


@pytest.mark.gen_test(timeout=90)
async def test_paging_returns_each_hit_once_newest_first(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca = await chat(a, ["websocket"])
    sent = [await ca.send(f"needle number {i}", recipientId=b.id) for i in range(23)]
    await ca.send("haystack only", recipientId=b.id)

    seen, before = [], None
    while True:
        params = {"limit": 10} | ({"before": before} if before else {})
        page = await search(api, b, "needle", **params)
        seen.extend(hit["message"]["id"] for hit in page["results"])
        if len(seen) == 10:   # a message sent while paging is not repeated nor shifts pages
            await ca.send("needle sent meanwhile", recipientId=b.id)
        if not page["hasMore"]:
            assert page["nextBefore"] is None
            break
        assert page["nextBefore"] == page["results"][-1]["message"]["id"]
        before = page["nextBefore"]
    assert seen == [m["id"] for m in reversed(sent)]


@pytest.mark.gen_test(timeout=60)
async def test_snippet_is_escaped_html_with_marks(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca = await chat(a, ["websocket"])
    await ca.send("<script>alert(1)</script> Café au lait & more", recipientId=b.id)
    long_text = "word " * 200 + "needle in the middle " + "word " * 200
    await ca.send(long_text.strip(), recipientId=b.id)

    (hit,) = (await search(api, b, "cafe"))["results"]   # accents and case do not matter
    assert hit["snippet"] == "&lt;script&gt;alert(1)&lt;/script&gt; <mark>Café</mark> au lait &amp; more"
    (hit,) = (await search(api, b, "needle"))["results"]
    assert "<mark>needle</mark> in the middle" in hit["snippet"]
    assert hit["snippet"].startswith("…") and hit["snippet"].endswith("…")
    assert len(hit["snippet"]) < 200
    assert hit["message"]["content"] == long_text.strip()


@pytest.mark.gen_test(timeout=60)
async def test_validation(api, user_factory, chat):
    a, b, c = await user_factory("a"), await user_factory("b"), await user_factory("c")
    elsewhere = await (await chat(b, ["websocket"])).send("between b and c", recipientId=c.id)
    bad = [
        ({}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "hello", "recipientId": b.id, "groupId": b.id}, "target"),
        ({"q": "hello", "recipientId": "nope"}, "recipientId"),
        ({"q": "hello", "limit": 0}, "limit"),
        ({"q": "hello", "limit": 51}, "limit"),
        ({"q": "hello", "before": "nope"}, "before"),
        ({"q": "hello", "before": "8a7d1c8e-3c49-4d4e-9a11-3f6f7e0c1d2b"}, "before"),
        # a message of a chat a is not in is as unknown as one that does not exist
        ({"q": "hello", "before": elsewhere["id"]}, "before"),
    ]
    for params, field in bad:
        response = await api.get("/api/chat/search", params=params, token=a.access)
        assert_error(response, 400)
        assert any(e.startswith(field) for e in response.json["errors"]), (params, response.json)
    assert_error(await api.get("/api/chat/search", params={"q": "hello"}), 401)


def test_terms_drop_what_the_index_does_not_hold():
    terms = search_terms("the app* e-mail go -banana", min_word_chars=3, stopwords=frozenset({"the"}))
    assert terms.phrases == (("app",), ("e", "mail"), ("banana",))
    assert boolean_query(terms) == '+"app" +"e mail" +"banana"'
    assert not search_terms('"" ++ -- **', min_word_chars=3, stopwords=frozenset())
    assert len(search_terms(" ".join(f"w{i:03}" for i in range(30)), min_word_chars=3,
                            stopwords=frozenset()).phrases) == 10


def test_snippet_marks_whole_words_only():
    assert snippet("apple app application", ("app",)) == "apple <mark>app</mark> application"
    assert snippet("Straße STRASSE", ("strasse",)) == "<mark>Straße</mark> <mark>STRASSE</mark>"


@pytest.mark.gen_test(timeout=60)
async def test_deleted_messages_never_match(api, user_factory, chat):
    a, b = await user_factory("a"), await user_factory("b")
    ca = await chat(a, ["websocket"])
    kept = await ca.send("launch codes are fine", recipientId=b.id)
    gone = await ca.send("launch codes are secret", recipientId=b.id)
    deleted = await ca.call("deleteMessage", {"messageId": gone["id"]})
    assert deleted.get("deletedAt"), deleted
    for user in (a, b):
        page = await search(api, user, "launch codes")
        assert [hit["message"]["id"] for hit in page["results"]] == [kept["id"]]
    assert contents(await search(api, a, "secret")) == []


@pytest.mark.gen_test(timeout=60)
async def test_every_plan_finds_the_same_and_a_scope_word_in_text_opens_nothing(
        api, user_factory, chat, monkeypatch):
    """Three plans (search_index.FulltextIndex.search): a rare term's matches checked directly,
    scope first (the index holds a scope word per message and the query requires one of the
    user's), and, past MAX_SCOPE_TOKENS, the plain query. They answer the same, and a message
    elsewhere whose *text* carries the user's scope words (anyone can type them) is never
    found: membership is checked in SQL by each of them."""
    from nexus_chat import search_index, searchtext

    a, b, c, d = [await user_factory(n) for n in "abcd"]
    ca, cc = await chat(a, ["websocket"]), await chat(c, ["websocket"])
    mine = await ca.send("ledger for b", recipientId=b.id)
    group = await make_group(api, a, [b], name="Books")
    in_group = await ca.send("ledger in the group", groupId=group)
    conversation_token = searchtext.scope_token(mine["conversationId"], None)
    group_token = searchtext.scope_token(None, group)
    planted = f"ledger {conversation_token} {group_token}"
    await cc.send(planted, recipientId=d.id)   # c and d only

    async def check() -> None:
        assert contents(await search(api, a, "ledger")) == ["ledger in the group", "ledger for b"]
        assert [h["message"]["id"] for h in (await search(api, a, "ledger"))["results"]] == [
            in_group["id"], mine["id"]]
        assert contents(await search(api, a, f"ledger {conversation_token}")) == ["ledger for b"]
        assert contents(await search(api, a, group_token)) == ["ledger in the group"]
        assert contents(await search(api, b, "ledger", groupId=group)) == ["ledger in the group"]
        assert contents(await search(api, c, "ledger")) == [planted]
        assert contents(await search(api, d, "ledger")) == [planted]
        page = await search(api, a, "ledger", limit=1)
        assert contents(page) == ["ledger in the group"] and page["hasMore"]
        assert contents(await search(api, a, "ledger", before=page["nextBefore"])) == ["ledger for b"]

    await check()                                              # rare: matches checked directly
    monkeypatch.setattr(search_index, "RARE_MATCHES", 0)
    await check()                                              # scope first
    monkeypatch.setattr(searchtext, "MAX_SCOPE_TOKENS", 1)     # a has 2 scopes: no scope clause
    await check()
