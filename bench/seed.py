"""Seeding through the real API: register → verification link read from the .eml files the
server writes under <var>/mail/ → GET the link → login. Parallel with bounded concurrency,
every wait bounded."""
from __future__ import annotations

import asyncio
import email
import email.policy
import re
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

PASSWORD = "bench-password-1"
LINK_RE = re.compile(r"https?://\S+/api/auth/verify-email\?token=[A-Za-z0-9._\-]+")


@dataclass
class User:
    index: int
    username: str
    email: str
    id: str = ""
    token: str = ""


def _envelope_data(body: dict) -> dict:
    return body.get("data") or {}


async def _post(session: aiohttp.ClientSession, url: str, payload: dict, expect: int) -> dict:
    async with session.post(url, json=payload) as resp:
        body = await resp.json(content_type=None)
        if resp.status != expect:
            raise RuntimeError(f"POST {url} → {resp.status}: {str(body)[:300]}")
        return body


def read_links(mail_dir: Path, seen: dict[str, str], parsed: set[str]) -> None:
    """Add {recipient e-mail: verification link} for every new .eml file."""
    if not mail_dir.is_dir():
        return
    for path in mail_dir.glob("*.eml"):
        if path.name in parsed:
            continue
        try:
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        except OSError:
            continue
        parsed.add(path.name)
        body = msg.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        match = LINK_RE.search(text)
        if match:
            seen[str(msg["To"]).strip().lower()] = match.group(0)


async def seed_users(base_url: str, mail_dir: Path, prefix: str, count: int, *, start: int = 0,
                     concurrency: int = 16, timeout_s: float = 180.0) -> tuple[list[User], dict]:
    """Register, verify and log in ``count`` users; returns them with tokens and timings."""
    users = [User(i, f"{prefix}{i}", f"{prefix}{i}@bench.example.com") for i in range(start, start + count)]
    sem = asyncio.Semaphore(concurrency)
    timings = {}
    deadline = time.monotonic() + timeout_s
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        t0 = time.monotonic()

        async def register(u: User) -> None:
            async with sem:
                body = await _post(session, base_url + "/api/auth/register",
                                   {"username": u.username, "fullName": f"Bench {u.index}",
                                    "email": u.email, "password": PASSWORD}, 201)
                u.id = _envelope_data(body).get("id", "")
        await asyncio.gather(*(register(u) for u in users))
        timings["register_s"] = round(time.monotonic() - t0, 2)

        t1 = time.monotonic()
        links: dict[str, str] = {}
        parsed: set[str] = set()
        wanted = {u.email.lower() for u in users}
        while not wanted <= links.keys():
            if time.monotonic() > deadline:
                missing = len(wanted - links.keys())
                raise RuntimeError(f"{missing} verification mails never arrived in {mail_dir}")
            await asyncio.to_thread(read_links, mail_dir, links, parsed)
            if not wanted <= links.keys():
                await asyncio.sleep(0.2)
        timings["mail_wait_s"] = round(time.monotonic() - t1, 2)

        t2 = time.monotonic()

        async def verify_and_login(u: User) -> None:
            async with sem:
                async with session.get(links[u.email.lower()], allow_redirects=False) as resp:
                    location = resp.headers.get("Location", "")
                    if resp.status != 302 or "status=success" not in location:
                        raise RuntimeError(f"verification of {u.email} failed: {resp.status} {location}")
                body = await _post(session, base_url + "/api/auth/login",
                                   {"email": u.email, "password": PASSWORD}, 200)
                data = _envelope_data(body)
                u.token = data["accessToken"]
                u.id = data.get("userId") or u.id
        await asyncio.gather(*(verify_and_login(u) for u in users))
        timings["verify_login_s"] = round(time.monotonic() - t2, 2)
    timings["users"] = count
    timings["total_s"] = round(time.monotonic() - t0, 2)
    return users, timings


async def api(session: aiohttp.ClientSession, method: str, url: str, token: str, payload=None,
              expect=(200, 201)) -> dict:
    async with session.request(method, url, json=payload,
                               headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.json(content_type=None)
        if resp.status not in expect:
            raise RuntimeError(f"{method} {url} → {resp.status}: {str(body)[:300]}")
        return body


async def make_group(base_url: str, owner: User, members: list[User]) -> str:
    """Create a group owned by ``owner`` and invite ``members`` (100 per invite, API limit)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        body = await api(session, "POST", base_url + "/api/groups", owner.token,
                         {"name": "Bench group", "description": "group-max fan-out"})
        group_id = _envelope_data(body)["id"]
        ids = [m.id for m in members if m.id != owner.id]
        for i in range(0, len(ids), 100):
            await api(session, "POST", base_url + "/api/groups/invite", owner.token,
                      {"groupId": group_id, "memberIds": ids[i:i + 100]})
    return group_id
