"""Shared pieces of the HTTP API tests (this module holds no tests).

`serve_http` runs a real HttpServer on a loopback port with a small but real inject service
(`EchoInject`) that validates the request like the real one, so the HTTP layer is tested
without the message generator.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import bcrypt

from mta.config import HttpConfig
from mta.http import HttpServer, NodeHealth
from mta.inject.errors import InjectError
from mta.metrics import Metrics
from mta.replies import S451_SPOOL_UNAVAILABLE, TransientError
from spool import SpoolStats

UNTRUSTED = ("10.255.255.0/24",)  # loopback clients are not trusted with this


class EchoInject:
    """An inject service that checks the request shape and counts recipients, storing nothing.

    `refuse` makes it raise TransientError (the spool refused), as the real one does.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str]] = []
        self.refuse: str | None = None

    async def inject(self, body: Any, *, peer_address: str) -> dict[str, Any]:
        self.calls.append((body, peer_address))
        if self.refuse is not None:
            raise TransientError(S451_SPOOL_UNAVAILABLE, self.refuse)
        if not isinstance(body, dict) or not isinstance(body.get("recipients"), list):
            raise InjectError(422, "recipients: expected a list")
        if "{{" in str(body.get("content", "")) and "}}" not in str(body.get("content")):
            raise InjectError(422, "content: syntax error in template: unclosed {{")
        failed = [r.get("email", "") for r in body["recipients"] if "@" not in r.get("email", "")]
        return {
            "success_count": len(body["recipients"]) - len(failed),
            "fail_count": len(failed),
            "failed_recipients": failed,
            "errors": [f"{email}: invalid address" for email in failed],
        }


@dataclasses.dataclass
class Served:
    url: str
    server: HttpServer
    health: NodeHealth
    inject: EchoInject
    metrics: Metrics
    storage: dict[str, str | None]  # {"reason": ...}: what the spool would say


@contextlib.asynccontextmanager
async def serve_http(
    ready: bool = True, reload_seconds: float = 0.1, **overrides: Any
) -> AsyncIterator[Served]:
    """A started HttpServer on 127.0.0.1 (any port) with `HttpConfig(**overrides)`."""
    config = HttpConfig(**{"listen": ("127.0.0.1:0",), **overrides})
    storage: dict[str, str | None] = {"reason": None}
    health = NodeHealth(lambda: storage["reason"])
    if ready:
        health.mark_ready()
    inject = EchoInject()
    metrics = Metrics(
        queue_stats=lambda: {"messages": 0}, spool_stats=lambda: SpoolStats(0, 0, 0, 0)
    )
    server = HttpServer(
        config,
        inject=inject,
        health=health,
        metrics=metrics,
        credentials_reload_seconds=reload_seconds,
    )
    await server.start()
    host, port = server.addresses[0]
    try:
        yield Served(f"http://{host}:{port}", server, health, inject, metrics, storage)
    finally:
        await server.stop()


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def bcrypt_hash(password: str) -> str:
    # The lowest cost bcrypt allows: the tests check verification, not hashing strength.
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def write_users_dir(path: Path, users: Mapping[str, str]) -> Path:
    """A directory laid out like a mounted Kubernetes Secret (files behind ..data links)."""
    data = path / "..2024_01_01_00_00_00.000000001"
    data.mkdir(parents=True)
    for user, secret in users.items():
        (data / user).write_text(secret)
    (path / "..data").symlink_to(data.name)
    for user in users:
        (path / user).symlink_to(f"..data/{user}")
    return path


INJECT_BODY = {
    "envelope_sender": "test@example.com",
    "content": "Subject: hello\r\n\r\nHello there\r\n",
    "recipients": [{"email": "someone@example.com"}],
}
