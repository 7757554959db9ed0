"""`mta` operator commands against a scripted HTTP server on loopback: requests and errors."""

from __future__ import annotations

import io
import json
import shlex
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from mta.cli import main

Capsys = pytest.CaptureFixture[str]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class StubNode:
    """Answers `(method, path)` from `replies`; 404 "no route" otherwise. Records requests."""

    url: str = ""
    replies: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    stall: float = 0.0  # seconds to sit on each request before answering
    released: threading.Event = field(default_factory=threading.Event)

    def reply(self, method: str, path: str, status: int, body: Any) -> None:
        self.replies[(method, path)] = (status, body if isinstance(body, str) else json.dumps(body))


def _handler(stub: StubNode) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            stub.seen.append(
                Seen(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body)
            )
            if stub.stall:
                stub.released.wait(stub.stall)
            status, text = stub.replies.get((self.command, parts.path), (404, "no route"))
            data = text.encode()
            kind = "application/json" if text[:1] in "[{" else "text/plain"
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up waiting (the timeout test)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    return Handler


@pytest.fixture
def stub() -> Iterator[StubNode]:
    node = StubNode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(node))
    server.daemon_threads = False
    node.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield node
    node.released.set()
    server.shutdown()
    server.server_close()  # joins the request threads: none outlives its test
    thread.join(5)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`mta ARGV` in this process: (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def mta(capsys: pytest.CaptureFixture[str], stub: StubNode, command: str) -> tuple[int, str, str]:
    """`mta --endpoint STUB COMMAND`, the command split as a shell would."""
    return run(capsys, "--endpoint", stub.url, *shlex.split(command))


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MTA_ENDPOINT", "MTA_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def test_bounce_posts_only_the_given_criteria(stub: StubNode, capsys: Capsys) -> None:
    created = {"id": "b-1", "bounced": {}, "total_bounced": 0}
    stub.reply("POST", "/api/admin/bounce/v1", 200, created)
    command = "bounce --queue q1 --queue q2 --reason 'bad send'"
    code, out, err = mta(capsys, stub, command + " --duration 10m --suppress-logging")
    assert (code, out, err) == (0, "created bounce b-1\n", "")
    assert stub.seen[0].body == {
        "queue_names": ["q1", "q2"],
        "duration": "10m",
        "suppress_logging": True,
        "reason": "bad send",
    }
    assert stub.seen[0].headers["Content-Type"] == "application/json"
    assert "Authorization" not in stub.seen[0].headers
    command = "--json bounce --domain example.com --routing-domain r.example --reason r"
    code, out, _ = mta(capsys, stub, command)
    assert json.loads(out) == created
    assert stub.seen[-1].body == {
        "domain": "example.com",
        "routing_domain": "r.example",
        "reason": "r",
    }
    mta(capsys, stub, "bounce --everything --reason r")
    assert stub.seen[-1].body == {"reason": "r"}


def test_suspend_and_ready_queue_bodies(stub: StubNode, capsys: Capsys) -> None:
    stub.reply("POST", "/api/admin/suspend/v1", 200, {"id": "s-1"})
    stub.reply("POST", "/api/admin/suspend-ready-q/v1", 200, {"id": "r-1"})
    command = "suspend --tenant t1 --reason why --expires 2030-01-01T00:00:00Z"
    assert mta(capsys, stub, command) == (0, "created suspension s-1\n", "")
    assert stub.seen[-1].body == {
        "tenant": "t1",
        "expires": "2030-01-01T00:00:00Z",
        "reason": "why",
    }
    name = "unspecified->mx.example.com@smtp_client"
    code, out, _ = mta(capsys, stub, f"suspend-ready-q --name '{name}' --reason block")
    assert (code, out) == (0, "created ready-queue suspension r-1\n")
    assert stub.seen[-1].body == {"name": name, "reason": "block"}


def test_list_and_cancel_in_both_spellings(stub: StubNode, capsys: Capsys) -> None:
    entry = {"id": "b-1", "domain": "example.com", "reason": "purge", "duration": "4m 10s"}
    entries = [{**entry, "bounced": {}, "total_bounced": 7}]
    stub.reply("GET", "/api/admin/bounce/v1", 200, entries)
    stub.reply("DELETE", "/api/admin/bounce/v1", 200, "")
    code, ours, _ = mta(capsys, stub, "bounce list")
    assert code == 0
    assert ours.splitlines()[1].split() == ["b-1", "example.com", "4m", "10s", "7", "purge"]
    assert mta(capsys, stub, "bounce-list")[1] == ours
    assert json.loads(mta(capsys, stub, "bounce list --json")[1]) == entries
    assert mta(capsys, stub, "bounce cancel b-1") == (0, "cancelled bounce b-1\n", "")
    assert mta(capsys, stub, "bounce-cancel --id b-2")[0] == 0
    deletes = [seen.body for seen in stub.seen if seen.method == "DELETE"]
    assert deletes == [{"id": "b-1"}, {"id": "b-2"}]


def test_inspect_asks_for_the_body_only_when_told(stub: StubNode, capsys: Capsys) -> None:
    info = {"sender": "s@x.example", "recipient": "r@y.example", "meta": {}}
    message = {"id": "m1", "message": {**info, "data": "Subject: hi\r\n\r\nHello.\r\n"}}
    stub.reply("GET", "/api/admin/inspect-message/v1", 200, message)
    code, out, _ = mta(capsys, stub, "queue inspect m1 --body")
    assert code == 0
    assert stub.seen[-1].query == {"id": ["m1"], "want_body": ["true"]}
    assert out.splitlines()[1].split() == ["sender", "s@x.example"]
    assert out.endswith("\n\nSubject: hi\n\nHello.\n")
    mta(capsys, stub, "inspect-message m1")
    assert stub.seen[-1].query == {"id": ["m1"], "want_body": ["false"]}


def test_errors_are_one_line_and_exit_1(stub: StubNode, capsys: Capsys) -> None:
    stub.reply("GET", "/api/admin/inspect-message/v1", 404, "no message 123")
    stub.reply("POST", "/api/admin/bounce/v1", 400, "duration: invalid duration 'x'")
    stub.reply("GET", "/api/admin/bounce/v1", 500, "internal error,\ntry again later")
    assert mta(capsys, stub, "queue inspect 123") == (1, "", "mta: 404: no message 123\n")
    bad = mta(capsys, stub, "bounce --everything --reason r --duration x")
    assert bad == (1, "", "mta: 400: duration: invalid duration 'x'\n")
    failed = mta(capsys, stub, "bounce list")
    assert failed == (1, "", "mta: 500: internal error, try again later\n")


def test_credentials_are_sent_and_never_printed(
    stub: StubNode, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stub.reply("GET", "/api/admin/suspend/v1", 401, "Invalid Authorization")
    monkeypatch.setenv("MTA_PASSWORD", "pa55word")
    refused = mta(capsys, stub, "--user ops suspend list")
    assert refused == (1, "", "mta: 401 unauthorized: check --user/MTA_PASSWORD\n")
    assert stub.seen[-1].headers["Authorization"] == "Basic b3BzOnBhNTV3b3Jk"  # ops:pa55word
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    _, _, err = mta(capsys, stub, f"suspend list --token-file {token}")
    assert err == "mta: 401 unauthorized: check --token-file\n"
    assert stub.seen[-1].headers["Authorization"] == "Bearer t0ken"
    password = tmp_path / "password"
    password.write_text("from-file\n")
    mta(capsys, stub, f"--user ops --password-file {password} suspend list")
    assert stub.seen[-1].headers["Authorization"] == "Basic b3BzOmZyb20tZmlsZQ=="


def test_inject_a_message_file(stub: StubNode, capsys: Capsys, tmp_path: Path) -> None:
    counts = {"success_count": 2, "fail_count": 0, "failed_recipients": [], "errors": []}
    stub.reply("POST", "/api/inject/v1", 200, counts)
    eml = tmp_path / "mail.eml"
    eml.write_bytes("Subject: caf\u00e9 {{ x }}\r\n\r\nHello.\r\n".encode())
    command = f"inject --from s@x.example --to a@y.example --to b@y.example {eml}"
    assert mta(capsys, stub, command) == (0, "2 accepted, 0 failed\n", "")
    assert stub.seen[-1].body == {
        "envelope_sender": "s@x.example",
        "recipients": [{"email": "a@y.example"}, {"email": "b@y.example"}],
        "content": "Subject: caf\u00e9 {{ x }}\r\n\r\nHello.\r\n",
        "template_dialect": "Static",
    }


def test_inject_a_payload_from_stdin_reports_failures(
    stub: StubNode, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = {
        "success_count": 0,
        "fail_count": 1,
        "failed_recipients": ["bad@"],
        "errors": ["bad@: invalid address"],
    }
    stub.reply("POST", "/api/inject/v1", 200, answer)
    payload = {"envelope_sender": "s@x", "recipients": [{"email": "bad@"}], "content": "x"}
    stdin = io.TextIOWrapper(io.BytesIO(json.dumps(payload).encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    code, out, err = mta(capsys, stub, "inject --json - -o json")
    assert stub.seen[-1].body == payload
    assert (code, json.loads(out)) == (1, answer)
    assert err == "mta inject: 1 recipient(s) failed\n"


def test_endpoint_from_the_environment_with_a_path_prefix(
    stub: StubNode, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MTA_ENDPOINT", stub.url + "/node-0/")
    assert run(capsys, "suspend-ready-q", "list")[0] == 1  # the stub has no such route
    assert stub.seen[-1].path == "/node-0/api/admin/suspend-ready-q/v1"


def test_unreachable_and_silent_nodes(stub: StubNode, capsys: Capsys) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    refused = run(capsys, "--endpoint", closed, "queue", "summary")
    assert refused == (1, "", f"mta: cannot reach {closed}: connection refused\n")
    stub.stall = 1.0
    code, _, err = mta(capsys, stub, "--timeout 0.2 bounce list")
    assert (code, err) == (1, f"mta: cannot reach {stub.url}: no answer within 0.2s\n")
