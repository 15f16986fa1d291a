"""Helpers shared by the protocol-layer tests: servers on real ports, raw HTTP and WebSocket."""

import asyncio
import json
from types import SimpleNamespace

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.testing import bind_unused_port
from tornado.websocket import websocket_connect

from nexus_chat.realtime.conformance import make_app
from nexus_chat.realtime.connection_order import ConnectionOrderHTTPServer

TIMEOUT = 10
BIN1, BIN2 = bytes([1, 2, 3]), bytes([4, 5, 6])
PLACEHOLDERS = '{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}'


# ------------------------------------------------------------------ helpers


def serve(app, *owners):
    sock, port = bind_unused_port()
    http = ConnectionOrderHTTPServer(app)
    http.add_sockets([sock])

    def stop():
        for owner in owners:
            owner.close_all()
        http.stop()

    async def shutdown():
        stop()
        await asyncio.sleep(0.01)  # let on_disconnect handlers run on this loop

    return SimpleNamespace(port=port, url=f"http://127.0.0.1:{port}", ws=f"ws://127.0.0.1:{port}", stop=stop,
                           shutdown=shutdown)



async def fetch(url, method="GET", body=None, headers=None):
    if body is None and method in ("POST", "PUT"):
        body = b""
    request = HTTPRequest(url, method=method, body=body, headers=headers, request_timeout=TIMEOUT,
                          allow_nonstandard_methods=True)
    return await AsyncHTTPClient().fetch(request, raise_error=False)


def error_of(response):
    return json.loads(response.body)


async def open_polling(base, path="/engine.io/", headers=None):
    response = await fetch(f"{base}{path}?EIO=4&transport=polling", headers=headers)
    assert response.code == 200, response.body
    text = response.body.decode()
    assert text.startswith("0")
    return json.loads(text[1:])["sid"]


def polling_url(base, sid, path="/engine.io/"):
    return f"{base}{path}?EIO=4&transport=polling&sid={sid}"


async def ws_open(url):
    return await asyncio.wait_for(websocket_connect(url), TIMEOUT)


async def recv(conn, answer_pings=True):
    """Next message (None once closed), skipping and answering server pings."""
    while True:
        message = await asyncio.wait_for(conn.read_message(), TIMEOUT)
        if answer_pings and message == "2":
            await conn.write_message("3")
            continue
        return message


async def wait_closed(conn):
    while await recv(conn) is not None:
        pass


async def eio_ws(base, path="/engine.io/"):
    conn = await ws_open(f"{base}{path}?EIO=4&transport=websocket")
    opened = await recv(conn)
    assert opened.startswith("0")
    return conn, json.loads(opened[1:])


async def sio_ws(base, connect="40"):
    """A raw Socket.IO connection on `/` over WebSocket, past the CONNECT and `auth` packets."""
    conn, _ = await eio_ws(base, "/socket.io/")
    await conn.write_message(connect)
    assert (await recv(conn)).startswith("40")
    assert (await recv(conn)).startswith("42")
    return conn


async def poll_records(base, sid, path, count):
    """GET until `count` records (pings answered and skipped) have arrived."""
    records = []
    while len(records) < count:
        response = await fetch(polling_url(base, sid, path))
        assert response.code == 200
        assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
        for record in response.body.decode().split("\x1e"):
            if record == "2":
                await fetch(polling_url(base, sid, path), "POST", "3")
            else:
                records.append(record)
    return records
