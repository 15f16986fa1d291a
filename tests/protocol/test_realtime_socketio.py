"""The Socket.IO layer on real ports: the socket.io-protocol behaviours of
docs/realtime.md#protocol-conformance, the server API the product uses, and python-socketio's
client end to end."""

import asyncio
import json
import time

import pytest
import socketio
from tornado.httpclient import HTTPRequest
from tornado.web import Application
from tornado.websocket import websocket_connect

from nexus_chat.realtime import server as server_module
from nexus_chat.realtime.conformance import make_app
from nexus_chat.realtime.engineio_packets import message_frame
from nexus_chat.realtime.rooms import InMemoryAdapter
from nexus_chat.realtime.server import ConnectRefused, Namespace, SocketServer



from .realtime_support import (
    TIMEOUT,
    BIN1,
    BIN2,
    PLACEHOLDERS,
    serve,
    fetch,
    open_polling,
    polling_url,
    recv,
    wait_closed,
    eio_ws,
    sio_ws,
    poll_records,
)

# ------------------------------------------------------------------ Socket.IO on the fixture


@pytest.mark.gen_test(timeout=TIMEOUT)
@pytest.mark.parametrize(
    "connect, reply_prefix, auth_packet",
    [
        ("40", "40", '42["auth",{}]'),
        ('40{"token":"123"}', "40", '42["auth",{"token":"123"}]'),
        ("40/custom,", "40/custom,", '42/custom,["auth",{}]'),
        ("40/custom", "40/custom,", '42/custom,["auth",{}]'),
        ('40/custom,{"token":"abc"}', "40/custom,", '42/custom,["auth",{"token":"abc"}]'),
    ],
)
async def test_socketio_connect(fx, connect, reply_prefix, auth_packet):
    conn, opened = await eio_ws(fx.ws, "/socket.io/")
    await conn.write_message(connect)
    reply = await recv(conn)
    assert reply.startswith(reply_prefix)
    handshake = json.loads(reply[len(reply_prefix):])
    assert set(handshake) == {"sid"} and isinstance(handshake["sid"], str)
    assert handshake["sid"] != opened["sid"]
    assert await recv(conn) == auth_packet
    conn.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_socketio_unknown_namespace(fx):
    conn, _ = await eio_ws(fx.ws, "/socket.io/")
    await conn.write_message("40/random")
    assert await recv(conn) == '44/random,{"message":"Invalid namespace"}'
    await conn.write_message("40")  # the connection is still usable
    assert (await recv(conn)).startswith("40{")
    conn.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_socketio_invalid_handshake_closes(fx):
    conn, _ = await eio_ws(fx.ws, "/socket.io/")
    await conn.write_message("4abc")
    assert await recv(conn) is None


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_socketio_connect_timeout(io_loop):
    app, engine, server = make_app(connect_timeout_ms=1000)
    running = serve(app, engine, server)
    try:
        started = time.monotonic()
        conn, _ = await eio_ws(running.ws, "/socket.io/")
        await wait_closed(conn)  # pings are answered: this is the connect timeout
        assert 0.9 < time.monotonic() - started < 3
    finally:
        await running.shutdown()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_socketio_disconnect_keeps_the_connection(fx):
    conn = await sio_ws(fx.ws)
    await conn.write_message("41")
    assert await recv(conn, answer_pings=False) == "2"
    await conn.write_message("3")
    conn.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_socketio_connect_then_disconnect_custom_namespace(fx):
    conn = await sio_ws(fx.ws)
    await conn.write_message("40/custom")
    assert (await recv(conn)).startswith("40/custom,")
    assert await recv(conn) == '42/custom,["auth",{}]'
    await conn.write_message("41/custom")
    await conn.write_message('42["message","message to main namespace"]')
    assert await recv(conn) == '42["message-back","message to main namespace"]'
    conn.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
@pytest.mark.parametrize(
    "bad",
    ["4abc", "42{}", '42abc["message-with-ack",1,"2",{"3":[false]}]', "40",  # "40": a second CONNECT
     '42/custom,["message"]', '43/custom,1[]', '44{"message":"x"}', "4", '42["x"', "4b2"],
)
async def test_socketio_invalid_packets_close_the_connection(fx, bad):
    conn = await sio_ws(fx.ws)
    await conn.write_message(bad)
    await wait_closed(conn)


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_socketio_binary_attachment_without_packet_closes(fx):
    conn = await sio_ws(fx.ws)
    await conn.write_message(BIN1, binary=True)
    await wait_closed(conn)


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_socketio_text_while_waiting_for_attachments_closes(fx):
    conn = await sio_ws(fx.ws)
    await conn.write_message('451-["message",{"_placeholder":true,"num":0}]')
    await conn.write_message('42["message"]')
    await wait_closed(conn)


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_socketio_events_and_acks_over_websocket(fx):
    conn = await sio_ws(fx.ws)
    await conn.write_message('42["message",1,"2",{"3":[true]}]')
    assert await recv(conn) == '42["message-back",1,"2",{"3":[true]}]'
    await conn.write_message('42456["message-with-ack",1,"2",{"3":[false]}]')
    assert await recv(conn) == '43456[1,"2",{"3":[false]}]'
    await conn.write_message(f'452-["message",{PLACEHOLDERS}]')
    await conn.write_message(BIN1, binary=True)
    await conn.write_message(BIN2, binary=True)
    assert [await recv(conn) for _ in range(3)] == [f'452-["message-back",{PLACEHOLDERS}]', BIN1, BIN2]
    await conn.write_message(f'452-789["message-with-ack",{PLACEHOLDERS}]')
    await conn.write_message(BIN1, binary=True)
    await conn.write_message(BIN2, binary=True)
    assert [await recv(conn) for _ in range(3)] == [f"462-789[{PLACEHOLDERS}]", BIN1, BIN2]
    await conn.write_message('42["message","héllo ✓"]')
    assert await recv(conn) == '42["message-back","héllo ✓"]'
    conn.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_socketio_events_and_acks_over_polling(fx):
    sid = await open_polling(fx.url, "/socket.io/")
    url = polling_url(fx.url, sid, "/socket.io/")
    assert (await fetch(url, "POST", b'40{"token":"t"}')).code == 200
    connected, auth = await poll_records(fx.url, sid, "/socket.io/", 2)
    assert connected.startswith('40{"sid":"') and auth == '42["auth",{"token":"t"}]'
    b64 = "\x1ebAQID\x1ebBAUG"
    assert (await fetch(url, "POST", f'452-["message",{PLACEHOLDERS}]{b64}'.encode())).code == 200
    assert await poll_records(fx.url, sid, "/socket.io/", 3) == [
        f'452-["message-back",{PLACEHOLDERS}]', "bAQID", "bBAUG"]
    assert (await fetch(url, "POST", f'452-789["message-with-ack",{PLACEHOLDERS}]{b64}'.encode())).code == 200
    assert await poll_records(fx.url, sid, "/socket.io/", 3) == [f"462-789[{PLACEHOLDERS}]", "bAQID", "bBAUG"]
    assert (await fetch(url, "POST", b'42456["message-with-ack",1,"2"]')).code == 200
    assert await poll_records(fx.url, sid, "/socket.io/", 1) == ['43456[1,"2"]']
    assert (await fetch(url, "POST", b"42{}")).code == 400  # invalid packet closes the session
    assert (await fetch(url)).code == 400


# ------------------------------------------------------------------ python-socketio end to end


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("transports", [None, ["websocket"], ["polling"]])
async def test_python_socketio_client(fx, transports):
    client = socketio.AsyncClient(reconnection=False)
    loop = asyncio.get_running_loop()
    auth, back = loop.create_future(), loop.create_future()
    client.on("auth", lambda data: auth.set_result(data))
    client.on("message-back", lambda *args: back.set_result(args))
    await client.connect(fx.url, transports=transports, auth={"token": "abc"}, wait_timeout=5)
    try:
        assert await asyncio.wait_for(auth, 5) == {"token": "abc"}
        await client.emit("message", ["héllo", b"\x00\x01", {"n": 1}])
        assert await asyncio.wait_for(back, 5) == (["héllo", b"\x00\x01", {"n": 1}],)
        assert await client.call("message-with-ack", [1, b"\xff"], timeout=5) == [1, b"\xff"]
        await asyncio.sleep(0.8)  # a few heartbeats (and the upgrade, by default)
        assert await client.call("message-with-ack", "still here", timeout=5) == "still here"
        expected = "polling" if transports == ["polling"] else "websocket"
        assert client.transport() == expected
    finally:
        await client.disconnect()


# ------------------------------------------------------------------ the server API used by the product


class ChatNamespace(Namespace):
    def __init__(self):
        self.events = []
        self.disconnects = []
        self.acks = []

    async def on_connect(self, socket, auth):
        if not auth or auth.get("token") != "good":
            raise ConnectRefused("Unauthorized")
        socket.data["user"] = auth["user"]
        socket.join(f"user:{auth['user']}")
        socket.join("everyone")
        socket.emit("hello", socket.handshake.query.get("tag"))

    async def on_event(self, socket, event, args):
        if event == "boom":
            raise RuntimeError("handler bug")
        if event == "seq":
            await asyncio.sleep(0.02 * (5 - args[0]))  # later events finish sooner if run concurrently
            self.events.append(args[0])
            return None
        if event == "ask":
            socket.emit("question", "ready?", callback=lambda *a: self.acks.append(a))
            return None
        if event == "kick":
            socket.disconnect()
            return None
        if event == "whoami":
            return {"user": socket.data["user"], "rooms": sorted(socket.rooms - {socket.sid}),
                    "ip": socket.handshake.remote_ip, "ua": socket.handshake.headers.get("X-Test")}
        return args

    async def on_disconnect(self, socket, reason):
        self.disconnects.append((socket.data.get("user"), reason, sorted(socket.rooms - {socket.sid})))


@pytest.fixture
def chat(io_loop):
    server = SocketServer(ping_interval_ms=25000, ping_timeout_ms=20000, max_payload=1_000_000,
                          connect_timeout_ms=45000, allowed_origins=None, max_buffer_bytes=1_000_000,
                          adapter=InMemoryAdapter())
    ns = ChatNamespace()
    server.add_namespace("/chat", ns)
    running = serve(Application(server.routes("/socket.io/")), server)
    running.server, running.ns = server, ns
    yield running
    io_loop.run_sync(running.shutdown)


async def chat_ws(running, user, tag="t"):
    conn = await websocket_connect(HTTPRequest(f"{running.ws}/socket.io/?EIO=4&transport=websocket&tag={tag}",
                                               headers={"X-Test": "yes"}))
    assert (await recv(conn)).startswith("0")
    await conn.write_message(f'40/chat,{{"token":"good","user":"{user}"}}')
    reply = await recv(conn)
    assert reply.startswith("40/chat,")
    assert await recv(conn) == f'42/chat,["hello","{tag}"]'  # emitted in on_connect, after the reply
    return conn, json.loads(reply[len("40/chat,"):])["sid"]


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_connect_refused(chat):
    conn, _ = await eio_ws(chat.ws, "/socket.io/")
    await conn.write_message('40/chat,{"token":"bad"}')
    assert await recv(conn) == '44/chat,{"message":"Unauthorized"}'
    await conn.write_message("40/chat")
    assert await recv(conn) == '44/chat,{"message":"Unauthorized"}'
    assert chat.server.sockets_in_room("/chat", "everyone") == []
    conn.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_main_namespace_exists_by_default(chat):
    conn, _ = await eio_ws(chat.ws, "/socket.io/")
    await conn.write_message("40")
    assert (await recv(conn)).startswith('40{"sid":')
    await conn.write_message('421["anything"]')
    assert await recv(conn) == "431[]"
    conn.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_acks_handshake_and_handler_errors(chat):
    conn, sid = await chat_ws(chat, "alice")
    await conn.write_message('42/chat,1["boom"]')  # a failing handler does not kill the connection
    await conn.write_message('42/chat,2["whoami"]')
    reply = await recv(conn)
    assert reply.startswith("43/chat,2[")
    assert json.loads(reply[len("43/chat,2"):]) == [
        {"user": "alice", "rooms": ["everyone", "user:alice"], "ip": "127.0.0.1", "ua": "yes"}]
    await conn.write_message('42/chat,3["echo",1,{"a":"é"}]')
    assert await recv(conn) == '43/chat,3[1,{"a":"é"}]'
    socket = chat.server.get_socket("/chat", sid)
    assert socket is not None and socket.namespace == "/chat" and socket.eio_sid != sid
    conn.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_events_of_one_socket_run_in_arrival_order(chat):
    conn, _ = await chat_ws(chat, "alice")
    for i in range(5):
        await conn.write_message(f'42/chat,["seq",{i}]')
    await conn.write_message('42/chat,9["echo"]')
    assert await recv(conn) == "43/chat,9[]"
    assert chat.ns.events == [0, 1, 2, 3, 4]
    conn.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_server_to_client_ack(chat):
    conn, _ = await chat_ws(chat, "alice")
    await conn.write_message('42/chat,["ask"]')
    question = await recv(conn)
    assert question.startswith("42/chat,") and question.endswith('["question","ready?"]')
    ack_id = question[len("42/chat,"):question.index("[")]
    await conn.write_message(f'43/chat,{ack_id}["yes",{{"n":1}}]')
    await conn.write_message('42/chat,5["echo"]')
    assert await recv(conn) == "43/chat,5[]"
    assert chat.ns.acks == [("yes", {"n": 1})]
    conn.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_broadcast_rooms_skip_and_encode_once(chat, monkeypatch):
    alice, alice_sid = await chat_ws(chat, "alice")
    bob, bob_sid = await chat_ws(chat, "bob")
    bob2, bob2_sid = await chat_ws(chat, "bob", tag="second")
    server = chat.server
    assert {s.sid for s in server.sockets_in_room("/chat", "user:bob")} == {bob_sid, bob2_sid}

    calls = []
    real_encode = server_module.sio.encode
    monkeypatch.setattr(server_module.sio, "encode", lambda p: calls.append(p) or real_encode(p))
    assert server.emit("/chat", "news", {"n": 1}, b"\x01", room="everyone") == 3
    assert len(calls) == 1  # encoded once for three receivers
    for conn in (alice, bob, bob2):
        assert [await recv(conn), await recv(conn)] == ['451-/chat,["news",{"n":1},{"_placeholder":true,"num":0}]',
                                                       b"\x01"]
    assert server.emit("/chat", "dm", "hi", room="user:bob", skip_sid=bob_sid) == 1
    assert await recv(bob2) == '42/chat,["dm","hi"]'
    assert server.emit("/chat", "multi", room=["user:alice", "user:bob"], skip_sid={bob2_sid}) == 2
    assert await recv(alice) == '42/chat,["multi"]'
    assert await recv(bob) == '42/chat,["multi"]'
    assert server.emit("/chat", "all") == 3
    assert server.emit("/", "nobody") == 0
    for conn in (alice, bob, bob2):
        assert await recv(conn) == '42/chat,["all"]'
        conn.close()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_socket_disconnect_and_close_connection(chat):
    conn, sid = await chat_ws(chat, "alice")
    await conn.write_message('42/chat,["kick"]')
    assert await recv(conn) == "41/chat,"
    await conn.write_message('42/chat,["echo"]')  # not in /chat any more: protocol error
    await wait_closed(conn)
    await asyncio.sleep(0.05)
    assert chat.ns.disconnects == [("alice", "server namespace disconnect", ["everyone", "user:alice"])]
    assert chat.server.get_socket("/chat", sid) is None
    assert chat.server.sockets_in_room("/chat", "everyone") == []

    conn, sid = await chat_ws(chat, "bob")
    chat.server.get_socket("/chat", sid).close_connection()
    await wait_closed(conn)
    await asyncio.sleep(0.05)
    assert chat.ns.disconnects[-1][:2] == ("bob", "forced server close")
    assert chat.server.connection_count() == 0


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_disconnect_reasons_and_close_all(chat):
    conn, _ = await chat_ws(chat, "alice")
    await conn.write_message("41/chat,")
    await conn.write_message('40/chat,{"token":"good","user":"alice"}')  # may connect again
    assert (await recv(conn)).startswith("40/chat,")
    conn2, _ = await chat_ws(chat, "bob")
    assert chat.server.connection_count() == 2
    conn2.close()
    for _ in range(100):
        if len(chat.ns.disconnects) == 2:
            break
        await asyncio.sleep(0.02)
    assert [d[:2] for d in chat.ns.disconnects] == [("alice", "client namespace disconnect"),
                                                    ("bob", "transport close")]
    chat.server.close_all()
    await wait_closed(conn)
    assert chat.server.connection_count() == 0


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_chat_over_polling_with_python_client(chat):
    client = socketio.AsyncClient(reconnection=False)
    got = asyncio.get_running_loop().create_future()
    client.on("hello", lambda tag: got.set_result(tag), namespace="/chat")
    await client.connect(chat.url + "?tag=py", namespaces=["/chat"], auth={"token": "good", "user": "carol"},
                         wait_timeout=5)
    try:
        assert await asyncio.wait_for(got, 5) == "py"
        assert await client.call("echo", {"x": 1}, namespace="/chat", timeout=5) == {"x": 1}
    finally:
        await client.disconnect()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_python_client_refused(chat):
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(chat.url, namespaces=["/chat"], auth={"token": "bad"}, wait_timeout=5)
    await client.disconnect()


# ------------------------------------------------------------------ in-memory adapter


def test_in_memory_adapter():
    adapter = InMemoryAdapter()
    delivered = []
    adapter.attach(lambda nsp, sid, frames: delivered.append((nsp, sid, frames)) or True)
    for sid in ("a", "b", "c"):
        adapter.join("/chat", sid, sid)
    adapter.join("/chat", "a", "r1")
    adapter.join("/chat", "b", "r1")
    adapter.join("/chat", "c", "r2")
    adapter.join("/other", "z", "r1")
    assert adapter.members("/chat", "r1") == {"a", "b"}
    assert adapter.rooms_of("/chat", "a") == {"a", "r1"}
    frames = [message_frame("2x")]
    assert adapter.broadcast("/chat", frames, ["r1", "r2"], except_rooms=["b"]) == 2
    assert sorted(sid for _, sid, _ in delivered) == ["a", "c"]
    assert all(f is frames for _, _, f in delivered)  # the very same frames for everyone
    delivered.clear()
    assert adapter.broadcast("/chat", frames) == 3
    adapter.leave("/chat", "a", "r1")
    assert adapter.members("/chat", "r1") == {"b"}
    adapter.leave_all("/chat", "b")
    assert adapter.members("/chat", "r1") == set() and adapter.rooms_of("/chat", "b") == set()
    assert adapter.members("/other", "r1") == {"z"}
