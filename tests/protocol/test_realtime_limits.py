"""What one hostile client may cost the Socket.IO server, on real ports (issue 9 items 5, 6,
12): binary attachments held for an incomplete packet, nesting depth, sessions that never
join a namespace. The product's settings for these are tested in test_chat_limits.py, the
process's memory in test_realtime_resources.py."""

import asyncio
import json
import logging

import pytest
from tornado.web import Application

from nexus_chat.realtime import socketio_packets as sio
from nexus_chat.realtime.conformance import MainNamespace
from nexus_chat.realtime.refusals import Refusal
from nexus_chat.realtime.server import Namespace, SocketServer

from .realtime_support import TIMEOUT, eio_ws, fetch, recv, serve

CAP = 4096


class Echo(MainNamespace):
    async def on_connect(self, socket, auth):  # no `auth` echo: only what the tests send comes back
        return None


class Lobby(Namespace):
    """Anyone may join; it proves nothing (like the product's `/`)."""

    admits_session = False


def start(**options):
    options = {"ping_interval_ms": 25000, "ping_timeout_ms": 20000, "max_payload": CAP, **options}
    server = SocketServer(**options)
    server.add_namespace("/", Echo())
    server.add_namespace("/lobby", Lobby())
    running = serve(Application(server.routes("/socket.io/")), server)
    running.server = server
    return running


async def connected(running, namespace="/"):
    conn, _ = await eio_ws(running.ws, "/socket.io/")
    await conn.write_message("40" if namespace == "/" else f"40{namespace},")
    assert (await recv(conn)).startswith("40")
    return conn


def placeholders(count: int) -> str:
    return ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(count))


async def send_until_closed(conn, messages) -> int:
    """Send each message; return how many were sent before the server closed the socket."""
    sent = 0
    for message in messages:
        if conn.protocol is None or conn.close_code is not None:
            break
        try:
            await conn.write_message(message, binary=isinstance(message, bytes))
        except Exception:  # WebSocketClosedError / StreamClosedError
            break
        sent += 1
        await asyncio.sleep(0.01)
    return sent


# ------------------------------------------------------------------ item 5: binary attachments


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_attachments_past_the_cap_close_the_connection(io_loop):
    running = start()  # the cap defaults to max_payload
    try:
        conn = await connected(running)
        await conn.write_message(f'45100-["message",{placeholders(100)}]')  # 3.1 KB: fits max_payload
        chunk = bytes(CAP // 2)
        sent = await send_until_closed(conn, [chunk] * 10)
        assert await recv(conn) is None
        assert sent < 10  # closed once more than CAP bytes were held (the third chunk)
        assert running.server.connection_count() == 0
    finally:
        await running.shutdown()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_attachments_within_the_cap_are_delivered(io_loop):
    running = start(max_attachment_bytes=3 * 1000)
    try:
        conn = await connected(running)
        await conn.write_message(f'453-["message",{placeholders(3)}]')
        for byte in (1, 2, 3):
            await conn.write_message(bytes([byte]) * 1000, binary=True)
        assert await recv(conn) == f'453-["message-back",{placeholders(3)}]'
        assert [await recv(conn) for _ in range(3)] == [bytes([b]) * 1000 for b in (1, 2, 3)]
        conn.close()
    finally:
        await running.shutdown()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_an_unfinished_binary_packet_is_closed_at_the_deadline(io_loop):
    running = start(attachment_timeout_ms=300)
    try:
        conn = await connected(running)
        await conn.write_message(f'452-["message",{placeholders(2)}]')
        await conn.write_message(b"\x01", binary=True)   # the second never comes
        assert await recv(conn) is None
        assert running.server.connection_count() == 0
        # A packet completed in time is not affected by an earlier deadline.
        conn = await connected(running)
        await conn.write_message(f'451-["message",{placeholders(1)}]')
        await conn.write_message(b"\x02", binary=True)
        assert await recv(conn) == f'451-["message-back",{placeholders(1)}]'
        assert await recv(conn) == b"\x02"
        await asyncio.sleep(0.4)
        await conn.write_message('42["message","still here"]')
        assert await recv(conn) == '42["message-back","still here"]'
        conn.close()
    finally:
        await running.shutdown()


# ------------------------------------------------------------------ item 6: nesting


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_deeply_nested_packet_is_a_parse_error_in_one_short_line(io_loop, caplog):
    running = start(max_payload=100_000)
    try:
        conn = await connected(running)
        nested = "[" * 990 + "]" * 990   # 2 KB: overflowed the stack in every recursive walk
        with caplog.at_level(logging.DEBUG, logger="nexus_chat"):
            await conn.write_message(f'42["message",{nested}]')
            assert await recv(conn) is None
            await asyncio.sleep(0.05)
        records = [r for r in caplog.records if r.name.startswith("nexus_chat") and r.levelno >= logging.INFO]
        assert len(records) == 1 and not records[0].exc_info, [r.getMessage() for r in records]
        assert "parse error" in records[0].getMessage() and "nested deeper than" in records[0].getMessage()
        assert len(records[0].getMessage()) < 300
        # Binary packets too (their placeholders are walked), and as an ack.
        for packet in (f'451-["message",{nested},{placeholders(1)}]', f'430[{nested}]'):
            conn = await connected(running)
            await conn.write_message(packet)
            assert await recv(conn) is None
    finally:
        await running.shutdown()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_nesting_up_to_the_limit_is_fine(io_loop):
    running = start()
    try:
        conn = await connected(running)
        deepest = "[" * (sio.MAX_DEPTH - 1) + "]" * (sio.MAX_DEPTH - 1)  # + the event's array
        await conn.write_message(f'42["message",{deepest}]')
        assert await recv(conn) == f'42["message-back",{deepest}]'
        await conn.write_message(f'42["message",[{deepest}]]')
        assert await recv(conn) is None
    finally:
        await running.shutdown()


# ------------------------------------------------------------------ item 12: sessions without a namespace


async def handshake(running, ip: str):
    return await fetch(f"{running.url}/socket.io/?EIO=4&transport=polling", headers={"X-Forwarded-For": ip})


def by_forwarded_ip(handshake_info) -> str:
    return handshake_info.headers.get("X-Forwarded-For", handshake_info.remote_ip)


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_sessions_without_a_namespace_are_capped_per_client(io_loop):
    running = start(max_unadmitted_per_client=3, client_address=by_forwarded_ip)
    try:
        sids = []
        for _ in range(3):
            response = await handshake(running, "10.0.0.1")
            assert response.code == 200
            sids.append(json.loads(response.body[1:])["sid"])
        refused = await handshake(running, "10.0.0.1")
        assert refused.code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert json.loads(refused.body) == {"code": 4, "message": "Too many unauthenticated connections"}
        assert (await handshake(running, "10.0.0.2")).code == 200   # another client is not affected
        # Joining a namespace that admits the session frees its place; the lobby does not.
        base = f"{running.url}/socket.io/?EIO=4&transport=polling&sid="
        assert (await fetch(base + sids[0], "POST", b"40/lobby,")).code == 200
        assert (await handshake(running, "10.0.0.1")).code == 429
        assert (await fetch(base + sids[1], "POST", b"40")).code == 200
        assert (await handshake(running, "10.0.0.1")).code == 200
        # So does closing a session.
        assert (await fetch(base + sids[2], "POST", b"1")).code == 200
        assert (await handshake(running, "10.0.0.1")).code == 200
        assert running.server.probation.count("10.0.0.1") == 3
    finally:
        await running.shutdown()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_sessions_without_a_namespace_are_capped_in_all(io_loop):
    running = start(max_unadmitted=4, client_address=by_forwarded_ip)
    try:
        statuses = [(await handshake(running, f"10.0.1.{i}")).code for i in range(6)]
        assert statuses == [200] * 4 + [503] * 2
    finally:
        await running.shutdown()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_websocket_handshakes_are_refused_before_the_upgrade(io_loop):
    running = start(max_unadmitted=1)
    try:
        first, _ = await eio_ws(running.ws, "/socket.io/")
        response = await fetch(f"{running.url}/socket.io/?EIO=4&transport=websocket",
                               headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
        assert response.code == 503 and json.loads(response.body)["code"] == 4
        first.close()
    finally:
        await running.shutdown()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_the_admit_hook_is_asked_for_every_handshake(io_loop):
    asked = []

    def admit(handshake_info):
        asked.append(handshake_info.query.get("transport"))
        return Refusal(429, 4, "slow down", 7) if len(asked) > 1 else None

    running = start(admit=admit)
    try:
        assert (await handshake(running, "10.0.0.1")).code == 200
        refused = await handshake(running, "10.0.0.1")
        assert refused.code == 429 and refused.headers["Retry-After"] == "7"
        assert asked == ["polling", "polling"]
    finally:
        await running.shutdown()


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_session_only_in_a_namespace_that_proves_nothing_meets_the_connect_timeout(io_loop):
    running = start(connect_timeout_ms=300)
    try:
        lobby = await connected(running, "/lobby")
        admitted = await connected(running, "/")
        assert await recv(lobby) is None
        await admitted.write_message('42["message","here"]')
        assert await recv(admitted) == '42["message-back","here"]'
        admitted.close()
    finally:
        await running.shutdown()
