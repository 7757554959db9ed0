"""Helpers for TSA tests: KumoMTA-style log records and rules from TOML text."""

from __future__ import annotations

from typing import Any

from shaping.loader import read_text
from shaping.rules import Rules

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
