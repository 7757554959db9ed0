"""Helpers for TSA tests: KumoMTA-style log records and rules from TOML text."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from shaping.loader import read_text
from shaping.rules import Rules
from shaping.tsa.daemon import DaemonSettings, TsaDaemon

SITE = "mx1.example.com|mx2.example.com"


def record(
    content: str = "rate limited",
    *,
    code: int = 421,
    enhanced: tuple[int, int, int] | None = (4, 7, 28),
    type: str = "TransientFailure",
    recipient: str = "user@example.com",
    site: str = SITE,
    source: str | None = None,
    queue: str | None = None,
    meta: dict[str, Any] | None = None,
    timestamp: float = 1000.0,
    command: str | None = "MAIL FROM:<a@b.test>\r\n",
) -> dict[str, Any]:
    """A log record as a node writes it (remote responses carry their command)."""
    klass = None
    if enhanced is not None:
        klass = {"class": enhanced[0], "subject": enhanced[1], "detail": enhanced[2]}
    return {
        "type": type,
        "id": "0123456789abcdef",
        "recipient": recipient,
        "queue": queue or recipient.rpartition("@")[2],
        "site": site,
        "egress_source": source,
        "response": {
            "code": code,
            "enhanced_code": klass,
            "content": content,
            "command": command,
        },
        "meta": meta or {},
        "timestamp": timestamp,
    }


def rules_from(text: str, name: str = "test.toml") -> Rules:
    """Rules from one shaping.toml text."""
    return Rules.load([read_text(name, text)])


class FakeClock:
    """A settable clock: ``clock()`` returns ``clock.now``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll ``check`` until it is true; TimeoutError after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


def base_url(daemon: TsaDaemon) -> str:
    host, port = daemon.addresses[0]
    return f"http://{host}:{port}"


RULES_TOML = """
["default"]

[["default".automation]]
regex = "4\\\\.7\\\\.28"
action = ["Suspend", {SetConfig = {name = "max_message_rate", value = "1/m"}}]
duration = "1h"

[["default".automation]]
regex = "5\\\\.7\\\\.1 blocked"
action = "Bounce"
duration = "1h"

[["default".automation]]
regex = "tenant paused"
action = "SuspendTenant"
duration = "1h"
"""


def daemon_settings(tmp_path: Path, **changes: Any) -> DaemonSettings:
    """Settings for an in-process daemon on a free loopback port, rules in ``tmp_path``."""
    rules = tmp_path / "shaping.toml"
    if not rules.exists():
        rules.write_text(RULES_TOML)
    defaults: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "state_path": tmp_path / "state" / "tsa.json",
        "shaping_files": (rules,),
        "save_interval": 60.0,
        "reload_interval": 0.05,
    }
    return DaemonSettings(**{**defaults, **changes})
