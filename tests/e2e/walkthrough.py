"""Runs the shell examples of a Markdown document as a reader would, against a live server.

A document's examples are its fenced ```sh blocks that talk to `localhost:3000`, and its ```js
blocks that connect a Socket.IO client there (with the js blocks that follow them). Each shell command (continuation lines joined)
runs in bash, each JavaScript block in node with the official socket.io-client, in document
order, from a working directory that looks like the repository root of a quick start (mail in
var/mail/). Like a reader, the runner
- keeps the shell variables a command assigns (`ACCESS=…`, `H=…`) for the next commands;
- fills each `<placeholder>` from an earlier answer (see PLACEHOLDERS), and defines the
  variables a JavaScript example leaves to the reader the same way (JS_VARIABLES);
- creates the image files a `-F field=@file` names, as a reader would pick one of theirs;
- lets the mail of the previous command arrive before the next one (a reader is not that fast).
A command fails the run when bash fails, when it prints nothing, when it answers an error
envelope (unless its comment says `# → <status>`, then it must answer exactly that error), or
when a verification link redirects with `status=failed`; a JavaScript example fails when it
throws, gets an error envelope as an ack, or has not finished within 20 s. The text of the
document is what runs; only node cannot be pointed elsewhere the way curl is (JS_BASE).
"""
from __future__ import annotations

import io
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
import pytest
from PIL import Image

BASE = "localhost:3000"
FENCE = re.compile(r"^```\s*(\S*)\s*$")
PLACEHOLDER = re.compile(r"<([A-Za-z][A-Za-z ]*)>")
EXPECTED = re.compile(r"#\s*→\s*(\d{3})\b")
ASSIGNMENT = re.compile(r"(?:^|;)\s*([A-Za-z_][A-Za-z0-9_]*)=")
UPLOAD = re.compile(r"-F\s+'?[A-Za-z]+=@([^\s';]+)")
URL = re.compile(r"https?://[^\s\"']+")


@dataclass(frozen=True)
class Step:
    where: str          # "README.md:41"
    command: str        # the command as written (continuation lines joined, comment removed)
    expect: int | None  # the error status its comment announces
    language: str = "sh"


@dataclass
class Answer:
    method: str
    path: str
    data: Any


@dataclass
class Session:
    """What the reader has seen so far: shell variables, JSON answers, printed links."""
    variables: dict[str, str] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    routes: set[tuple[str, str]] = field(default_factory=set)


# ---- reading a document ------------------------------------------------------------------
def split_comment(line: str) -> tuple[str, str]:
    """(code, comment) of a shell line; a `#` inside quotes is not a comment."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i:]
    return line.rstrip(), ""


def steps_of(path: Path, label: str) -> list[Step]:
    """Every command of every ```sh block that talks to the server, in document order."""
    steps: list[Step] = []
    lines = path.read_text().splitlines()
    block: list[tuple[int, str]] | None = None
    language = ""
    for number, line in enumerate(lines, 1):
        fence = FENCE.match(line)
        if fence and block is None:
            block, language = [], fence.group(1)
        elif line.startswith("```") and block is not None:
            if language == "sh" and any(BASE in split_comment(text)[0] for _, text in block):
                steps.extend(_commands(block, label))
            elif language == "js":
                # A block that connects starts a program; the js blocks right after it go on with it.
                code = "\n".join(text for _, text in block)
                if f'io("http://{BASE}' in code:
                    steps.append(Step(f"{label}:{block[0][0]}", code, None, "js"))
                elif steps and steps[-1].language == "js":
                    steps[-1] = replace(steps[-1], command=steps[-1].command + "\n" + code)
            block = None
        elif block is not None:
            block.append((number, line))
    return steps


def _commands(block: list[tuple[int, str]], label: str) -> list[Step]:
    steps, pending, start = [], "", 0
    for number, line in block:
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        code, comment = split_comment(pending + line.strip())
        pending = ""
        expected = EXPECTED.search(comment)
        steps.append(Step(f"{label}:{start}", code, int(expected.group(1)) if expected else None))
    return steps


# ---- placeholders ------------------------------------------------------------------------
def _latest(session: Session, method: str, path: str) -> Any:
    for answer in reversed(session.answers):
        if answer.method == method and re.fullmatch(path, answer.path):
            return answer.data
    raise LookupError(f"no earlier answer of {method} {path}")


def _latest_field(name: str) -> Callable[[Session], str]:
    def find(session: Session) -> str:
        for answer in reversed(session.answers):
            if isinstance(answer.data, dict) and answer.data.get(name):
                return str(answer.data[name])
        raise LookupError(f"no earlier answer with data.{name}")
    return find


def _link_token(session: Session) -> str:
    for link in reversed(session.links):
        token = parse_qs(urlparse(link).query).get("token")
        if token:
            return token[0]
    raise LookupError("no earlier command printed a link with a token")


# <name> -> how a reader finds its value in what they have seen.
PLACEHOLDERS: dict[str, Callable[[Session], str]] = {
    "accessToken": _latest_field("accessToken"),
    "refreshToken": _latest_field("refreshToken"),
    "token": _link_token,
    "uid": lambda s: _latest(s, "GET", r"/api/users/search")[0]["id"],
    "gid": lambda s: _latest(s, "POST", r"/api/groups")["id"],
    "story id": lambda s: _latest(s, "POST", r"/api/story")["id"],
    "contact id": lambda s: _latest(s, "POST", r"/api/contacts")["id"],
    "message id": lambda s: _latest(s, "GET", r"/api/chat/messages")[-1]["id"],
}


# Variables a JavaScript example uses without defining -> the placeholder that gives their value.
JS_VARIABLES = {"accessToken": "accessToken", "friendId": "uid"}
JS_BASE = f"http://{BASE}"
# Before the example: an ack that is an error envelope, or no end within 20 s, fails the run.
JS_PRELUDE = """import { Socket as WalkthroughSocket } from "socket.io-client";
const walkthroughEmitWithAck = WalkthroughSocket.prototype.emitWithAck;
WalkthroughSocket.prototype.emitWithAck = async function (...args) {
  const answer = await walkthroughEmitWithAck.apply(this, args);
  if (answer && answer.success === false) {
    console.error(`${args[0]} answered an error: ${JSON.stringify(answer)}`);
    process.exit(1);
  }
  return answer;
};
setTimeout(() => { console.error("the example did not finish within 20 s"); process.exit(1); }, 20000).unref();
"""


def _placeholder(name: str, where: str, session: Session) -> str:
    if name not in PLACEHOLDERS:
        raise AssertionError(f"{where}: <{name}> is not a placeholder the walk-through knows; "
                             f"add to tests/e2e/walkthrough.py PLACEHOLDERS how a reader finds it")
    try:
        return PLACEHOLDERS[name](session)
    except (LookupError, IndexError, KeyError, TypeError) as exc:
        raise AssertionError(f"{where}: cannot fill <{name}> from the earlier answers: {exc}") from None


def javascript(step: Step, session: Session, base_url: str) -> str:
    """The example as an ES module: its free variables defined, its server the test's."""
    lines = [f"const {name} = {orjson.dumps(_placeholder(placeholder, step.where, session)).decode()};"
             for name, placeholder in JS_VARIABLES.items()
             if re.search(rf"\b{name}\b", step.command)
             and not re.search(rf"\b(?:const|let|var)\s+{name}\b", step.command)]
    code = step.command.replace(JS_BASE, base_url)
    return JS_PRELUDE + "\n".join(lines) + "\n" + code + "\nprocess.exit(0);\n"


def fill(step: Step, session: Session) -> str:
    return PLACEHOLDER.sub(lambda match: _placeholder(match.group(1), step.where, session), step.command)


# ---- running -----------------------------------------------------------------------------
def request_of(command: str) -> tuple[str, str] | None:
    """(method, /api/path) of a curl command, as curl would send it."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    target = re.search(rf"{BASE}(/[^\s'\"?]*)", command)   # also a URL read from a mail: "$(grep …)"
    if not words or words[0] != "curl" or target is None:
        return None
    method = "GET"
    if "-X" in words:
        method = words[words.index("-X") + 1]
    elif any(w in ("-d", "-F", "--data") for w in words):
        method = "POST"
    return method, target.group(1)


def make_upload(path: Path) -> None:
    """A small real image in the format its name says (what a reader would pick)."""
    formats = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
    kind = formats.get(path.suffix.lower())
    assert kind, f"the walk-through cannot make an upload named {path.name}"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buffer, kind)
    path.write_bytes(buffer.getvalue())


class Runner:
    def __init__(self, workdir: Path, env: dict[str, str], settle: Callable[[], None],
                 base_url: str) -> None:
        self.workdir = workdir
        self.env = env
        self.settle = settle     # waits until the server has delivered the mail it queued
        self.base_url = base_url
        self.session = Session()

    def run(self, step: Step) -> None:
        if step.language == "js":
            return self.run_javascript(step)
        command = fill(step, self.session)
        for name in UPLOAD.findall(command):
            if not (self.workdir / name).exists():
                make_upload(self.workdir / name)
        prelude = "".join(f"{name}={shlex.quote(value)}\n" for name, value in self.session.variables.items())
        assigned = ASSIGNMENT.findall(command) if ASSIGNMENT.match(command) else []
        epilogue = "".join(f'\nprintf "%s\\0" "${name}"' for name in assigned)
        result = subprocess.run(["bash", "-c", prelude + command + epilogue], cwd=self.workdir,
                                env=self.env, capture_output=True, text=True, timeout=60)
        where = f"{step.where}: {step.command}"
        assert result.returncode == 0, f"{where}\nexit {result.returncode}: {result.stderr[-2000:]}"
        if assigned:
            values = result.stdout.split("\0")
            self.session.variables.update(zip(assigned, values))
            return
        out = result.stdout.strip()
        assert out, f"{where}\nprinted nothing ({result.stderr[-500:]})"
        self._check(step, command, where, out)
        self.settle()

    def run_javascript(self, step: Step) -> None:
        """In node, with the official client that bin/test installs in tests/js/."""
        modules = Path(__file__).resolve().parents[1] / "js" / "node_modules"
        node = shutil.which("node")
        if not node or not (modules / "socket.io-client").is_dir():
            pytest.skip("node and tests/js/node_modules are needed for the JavaScript examples "
                        "(bin/test installs them)")
        if not (self.workdir / "node_modules").exists():
            (self.workdir / "node_modules").symlink_to(modules)
        script = self.workdir / "walkthrough-example.mjs"
        script.write_text(javascript(step, self.session, self.base_url))
        result = subprocess.run([node, str(script)], cwd=self.workdir, env=self.env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, \
            f"{step.where}: the JavaScript example failed:\n{result.stderr[-2000:]}{result.stdout[-1000:]}"
        self.settle()

    def _check(self, step: Step, command: str, where: str, out: str) -> None:
        request = request_of(command)
        if request:
            self.session.routes.add(request)
        try:
            body = orjson.loads(out)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and "success" in body:
            if step.expect is None:
                assert body["success"] is True, f"{where}\nanswered an error: {out[:2000]}"
                if request:
                    self.session.answers.append(Answer(*request, body["data"]))
            else:
                assert body["success"] is False and body["statusCode"] == step.expect, \
                    f"{where}\nexpected the {step.expect} error its comment announces, got: {out[:2000]}"
            return
        assert step.expect is None, f"{where}\nexpected a {step.expect} error envelope, got: {out[:2000]}"
        assert "status=failed" not in out, f"{where}\nthe link failed: {out}"
        self.session.links.extend(URL.findall(out))


def run_document(path: Path, label: str, workdir: Path, env: dict[str, str],
                 settle: Callable[[], None], base_url: str) -> Session:
    steps = steps_of(path, label)
    assert steps, f"{label} has no shell examples talking to {BASE}"
    runner = Runner(workdir, env, settle, base_url)
    for step in steps:
        runner.run(step)
    return runner.session


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
