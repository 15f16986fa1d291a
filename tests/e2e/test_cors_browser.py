"""CORS as a browser front end on another origin sees it: a real headless Chromium loads a page
from a second origin (an allowed one) that calls every authenticated route with fetch, including
DELETE/PUT/PATCH with Authorization and multipart uploads, and reports what succeeded.
Preflights on every route are also checked directly, for allowed and other origins."""
from __future__ import annotations

import asyncio
import base64
import io
import json
import shutil
import tempfile

import pytest
import tornado.web
from PIL import Image

from nexus_chat.routes import api_routes
from nexus_chat.embedded_db import free_port
from nexus_chat.routing import route_template

from .chat_support import ChatClient

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGE_PORT = free_port()
PAGE_ORIGIN = f"http://localhost:{PAGE_PORT}"
SAMPLE_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def setting_overrides():
    return {"server_cors_origins": ["http://localhost:3001", PAGE_ORIGIN]}


def api_operations(auth_only: bool) -> list[tuple[str, str]]:
    """(method, templated path) of every REST operation in the route table."""
    found = []
    for pattern, handler, *_ in api_routes():
        for method, op in getattr(handler, "ops", {}).items():
            if op.auth or not auth_only:
                found.append((method, route_template(pattern)))
    return found


def concrete(template: str) -> str:
    return template.replace("{path}", "x.png").format_map(_AnyId())


class _AnyId(dict):
    def __missing__(self, key: str) -> str:
        return SAMPLE_ID


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


# The front end's part: every call the browser makes, in an order that keeps each one valid.
PAGE_SCRIPT = r"""
const CFG = JSON.parse(document.getElementById('cfg').textContent);
const API = CFG.api;
const results = [];
let token = CFG.token;

function pngBlob() {
  const raw = atob(CFG.png);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return new Blob([bytes], {type: 'image/png'});
}

async function call(method, route, path, opts = {}) {
  const init = {method, headers: {}, credentials: 'include'};
  if (opts.auth !== false) init.headers['Authorization'] = 'Bearer ' + token;
  if (opts.json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.json);
  }
  if (opts.form) init.body = opts.form;
  try {
    const response = await fetch(API + path, init);
    const body = await response.json();
    results.push({method, route, status: response.status,
                  requestId: response.headers.get('X-Request-Id'), message: body.message});
    return body.data;
  } catch (error) {
    results.push({method, route, status: 0, error: String(error)});
    return null;
  }
}

async function main() {
  const B = CFG.friend, C = CFG.third;
  await call('GET', '/api/auth/me', '/api/auth/me');
  await call('GET', '/api/users/search', '/api/users/search?q=' + encodeURIComponent(CFG.friendName));
  await call('PATCH', '/api/users/profile', '/api/users/profile', {json: {bio: 'from the browser'}});
  const avatar = new FormData();
  avatar.append('fullName', 'Browser User');
  avatar.append('avatar', pngBlob(), 'a.png');
  await call('PATCH', '/api/users/profile', '/api/users/profile', {form: avatar});

  const contact = await call('POST', '/api/contacts', '/api/contacts', {json: {contactUserId: B, alias: 'Bee'}});
  const contactId = contact ? contact.id : 'missing';
  await call('GET', '/api/contacts', '/api/contacts');
  await call('GET', '/api/contacts/{id}', '/api/contacts/' + contactId);
  await call('PUT', '/api/contacts/{id}', '/api/contacts/' + contactId, {json: {alias: 'Bee 2'}});

  await call('GET', '/api/chat/messages', '/api/chat/messages?recipientId=' + B);
  await call('GET', '/api/chat/recent-messages', '/api/chat/recent-messages');
  const theirs = CFG.friendMessage, mine = CFG.myMessage, thumbs = encodeURIComponent('\u{1F44D}');
  await call('PUT', '/api/chat/messages/{messageId}/reactions/{emoji}',
             '/api/chat/messages/' + theirs + '/reactions/' + thumbs);
  await call('DELETE', '/api/chat/messages/{messageId}/reactions/{emoji}',
             '/api/chat/messages/' + theirs + '/reactions/' + thumbs);
  await call('PATCH', '/api/chat/messages/{messageId}', '/api/chat/messages/' + mine, {json: {content: 'edited'}});
  await call('GET', '/api/chat/messages/{messageId}/edits', '/api/chat/messages/' + mine + '/edits');
  await call('POST', '/api/chat/read', '/api/chat/read', {json: {conversationId: CFG.conversation}});
  await call('GET', '/api/chat/messages/{messageId}/receipts', '/api/chat/messages/' + mine + '/receipts');
  await call('GET', '/api/chat/conversations', '/api/chat/conversations?limit=5');
  await call('GET', '/api/chat/search', '/api/chat/search?q=browser');
  await call('GET', '/api/chat/events', '/api/chat/events');
  const upload = new FormData();
  upload.append('file', pngBlob(), 'photo.png');
  await call('POST', '/api/chat/attachments', '/api/chat/attachments', {form: upload});
  await call('DELETE', '/api/chat/messages/{messageId}', '/api/chat/messages/' + mine);

  const storyForm = new FormData();
  storyForm.append('caption', 'hello from another origin');
  storyForm.append('image', pngBlob(), 's.png');
  const story = await call('POST', '/api/story', '/api/story', {form: storyForm});
  const storyId = story ? story.id : 'missing';
  await call('GET', '/api/story', '/api/story');
  await call('GET', '/api/story/feed', '/api/story/feed');
  await call('POST', '/api/story/{storyId}/seen', '/api/story/' + CFG.friendStory + '/seen');
  await call('GET', '/api/story/{storyId}/viewers', '/api/story/' + storyId + '/viewers');
  await call('DELETE', '/api/story/{id}', '/api/story/' + storyId);

  const group = await call('POST', '/api/groups', '/api/groups', {json: {name: 'Browser group'}});
  const g = group ? group.id : 'missing';
  await call('POST', '/api/groups/invite', '/api/groups/invite', {json: {groupId: g, memberIds: [B, C]}});
  await call('GET', '/api/groups/my-groups', '/api/groups/my-groups');
  const icon = new FormData();
  icon.append('description', 'now with an icon');
  icon.append('icon', pngBlob(), 'i.png');
  await call('PATCH', '/api/groups/{groupId}', '/api/groups/' + g, {form: icon});
  await call('GET', '/api/groups/{groupId}/members', '/api/groups/' + g + '/members');
  await call('GET', '/api/groups/{groupId}/profile', '/api/groups/' + g + '/profile');
  await call('PUT', '/api/groups/{groupId}/members/{memberId}/role',
             '/api/groups/' + g + '/members/' + B + '/role', {json: {role: 'admin'}});
  await call('DELETE', '/api/groups/{groupId}/members/{memberId}', '/api/groups/' + g + '/members/' + C);
  await call('POST', '/api/groups/{groupId}/leave', '/api/groups/' + CFG.friendGroup + '/leave');
  await call('DELETE', '/api/groups/{groupId}', '/api/groups/' + g);
  await call('DELETE', '/api/contacts/{id}', '/api/contacts/' + contactId);

  await call('POST', '/api/auth/change-password', '/api/auth/change-password',
             {json: {oldPassword: CFG.password, newPassword: CFG.password + '-2'}});
  const login = async () => {
    const tokens = await call('POST', '/api/auth/login', '/api/auth/login',
                              {auth: false, json: {email: CFG.email, password: CFG.password + '-2'}});
    if (tokens) token = tokens.accessToken;
  };
  await login();
  await call('POST', '/api/auth/logout', '/api/auth/logout');
  await login();
  await call('DELETE', '/api/auth/delete-account', '/api/auth/delete-account',
             {json: {password: CFG.password + '-2'}});
}

main().catch(e => results.push({route: 'script', status: 0, error: String(e)}))
  .finally(() => fetch('/report', {method: 'POST', body: JSON.stringify(results)}));
"""


class PageHandler(tornado.web.RequestHandler):
    def initialize(self, config: dict) -> None:
        self.config = config

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish("<!doctype html><html><head><title>front end</title>"
                    f"<script type=\"application/json\" id=\"cfg\">{json.dumps(self.config)}</script>"
                    f"</head><body><script>{PAGE_SCRIPT}</script></body></html>")


class ReportHandler(tornado.web.RequestHandler):
    def initialize(self, report: asyncio.Future) -> None:
        self.report = report

    def post(self) -> None:
        if not self.report.done():
            self.report.set_result(json.loads(self.request.body))
        self.finish("ok")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
@pytest.mark.gen_test(timeout=180)
async def test_a_browser_on_another_origin_can_call_every_authenticated_route(runtime, api, user_factory):
    me, friend, third = await user_factory("me"), await user_factory("fr"), await user_factory("th")
    # The friend has saved us (so their story is in our feed once we save them back), posted
    # a story, and made a group we are in (so we can leave it).
    assert (await api.post("/api/contacts", token=friend.access, json={"contactUserId": me.id})).status == 201
    story = await api.post("/api/story", token=friend.access, form={"caption": "hi"})
    assert story.status == 201, story.body
    group = await api.post("/api/groups", token=friend.access, json={"name": "Friends"})
    assert group.status == 201, group.body
    invited = await api.post("/api/groups/invite", token=friend.access,
                             json={"groupId": group.data["id"], "memberIds": [me.id]})
    assert invited.status == 201, invited.body

    # A message each way (sending is Socket.IO only), for the message routes.
    messages = {}
    for sender, recipient, key in ((friend, me, "friendMessage"), (me, friend, "myMessage")):
        client = ChatClient(runtime.base_url, sender, ["websocket"])
        await client.connect()
        sent = await client.send("for the browser", recipientId=recipient.id)
        messages[key], messages["conversation"] = sent["id"], sent["conversationId"]
        await client.close()

    config = {**messages, "api": runtime.base_url, "token": me.access, "email": me.email, "password": me.password,
              "friend": friend.id, "friendName": friend.username, "third": third.id,
              "friendStory": story.data["id"], "friendGroup": group.data["id"],
              "png": base64.b64encode(png()).decode()}
    report: asyncio.Future = asyncio.get_running_loop().create_future()
    page_app = tornado.web.Application([(r"/", PageHandler, {"config": config}),
                                        (r"/report", ReportHandler, {"report": report})])
    page_server = page_app.listen(PAGE_PORT, "127.0.0.1")
    try:
        with tempfile.TemporaryDirectory(prefix="nexus-chromium-") as profile:
            process = await asyncio.create_subprocess_exec(
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={profile}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
                f"{PAGE_ORIGIN}/",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
            try:
                results = await asyncio.wait_for(report, timeout=150)
            finally:
                process.kill()
                await process.wait()
    finally:
        page_server.stop()

    failed = [r for r in results if not 200 <= r["status"] < 300]
    assert not failed, json.dumps(failed, indent=1)
    # The exposed headers reach the page's script too.
    assert all(r["requestId"] for r in results)
    called = {(r["method"], r["route"]) for r in results}
    missing = sorted(set(api_operations(auth_only=True)) - called)
    assert not missing, f"authenticated routes the browser test does not call (add them): {missing}"


@pytest.mark.gen_test
async def test_preflight_on_every_route(api):
    for method, template in [*api_operations(auth_only=False), ("GET", "/api/public/{path}")]:
        path = concrete(template)
        allowed = await api.request("OPTIONS", path, headers={
            "Origin": "http://localhost:3001", "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert allowed.status == 204, (method, path, allowed.status, allowed.body)
        assert allowed.headers["Access-Control-Allow-Origin"] == "http://localhost:3001"
        assert method in allowed.headers["Access-Control-Allow-Methods"].split(", "), (method, path)
        assert "authorization" in allowed.headers["Access-Control-Allow-Headers"].lower()
        assert allowed.body == b""

        other = await api.request("OPTIONS", path, headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": method})
        assert other.status == 204, (method, path, other.status, other.body)
        assert not any(name.startswith("Access-Control-Allow") for name in other.headers), (path, other.headers)
