"""The scenarios of the benchmark issue, each with its target ratio ours/Postfix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mtabench.load import SENDER
from mtabench.ours import http_inject_unavailable

SESSIONS = 20
SMALL = 2 * 1024
LARGE = 100 * 1024
QUICK_DIVISOR = 10  # --quick: a tenth of the messages


@dataclass(frozen=True, slots=True)
class Load:
    """How messages are offered to an MTA."""

    kind: Literal["smtp", "http"]
    size: int  # smtp-source -l (payload bytes); HTTP: the rendered message is about 2 KB
    sessions: int = SESSIONS
    reuse: bool = True  # smtp-source -d
    recipients_per_request: int = 1  # HTTP inject only

    def describe(self) -> str:
        if self.kind == "http":
            return f"HTTP inject, {self.recipients_per_request} rcpt/request, {self.sessions} conns"
        conn = "reused connections" if self.reuse else "new connection per message"
        return f"SMTP {self.size // 1024} KB, {self.sessions} sessions, {conn}"


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    title: str
    ours: Load
    peer: Load  # what Postfix gets: the same load, or the baseline the target is relative to
    messages: int  # per run: ~15-30 s for Postfix on 2 cores (it relays ~350-550 msg/s)
    target: float | None  # median end-to-end ratio ours/Postfix this scenario should reach
    unavailable: Callable[[], str | None] = lambda: None
    ours_config: Callable[[Path], str] = lambda _workdir: ""  # more TOML for our node

    def messages_for(self, override: int | None, quick: bool) -> int:
        if override is not None:
            return override
        return max(self.messages // QUICK_DIVISOR, 100) if quick else self.messages


def _dkim_config(workdir: Path) -> str:
    """A new RSA-2048 key for the load's sender domain (smtp-source's From is the sender) and
    its [dkim] table; `required` makes a signing failure fail the run instead of passing
    unsigned mail."""
    from mta.dkim.keys import generate_key, key_pem

    domain = SENDER.rpartition("@")[2]
    path = workdir / "dkim" / domain / "bench.key"
    path.parent.mkdir(parents=True)
    path.write_bytes(key_pem(generate_key("rsa-sha256", 2048)))
    return f'\n[dkim."{domain}"]\nselector = "bench"\nkey_file = "{path}"\nrequired = true\n'


def _http_unavailable() -> str | None:
    reason = http_inject_unavailable()
    return None if reason is None else f"n/a: {reason}"


RELAY_2K = Load("smtp", SMALL)
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("relay-2k", "SMTP relay 2 KB, 20 sessions, reused conns", RELAY_2K, RELAY_2K,
             10_000, 2.0),
    Scenario("relay-2k-newconn", "SMTP relay 2 KB, 20 sessions, new conn/msg",
             Load("smtp", SMALL, reuse=False), Load("smtp", SMALL, reuse=False), 8_000, 1.5),
    Scenario("relay-100k", "SMTP relay 100 KB, 20 sessions, reused conns",
             Load("smtp", LARGE), Load("smtp", LARGE), 5_000, 1.5),
    Scenario("dkim-2k", "SMTP relay 2 KB + DKIM RSA-2048 (ours) vs unsigned", RELAY_2K,
             RELAY_2K, 10_000, 1.5, ours_config=_dkim_config),
    Scenario("http-inject", "HTTP inject 100 rcpt/req vs Postfix 2 KB relay",
             Load("http", SMALL, recipients_per_request=100), RELAY_2K, 10_000, 5.0,
             _http_unavailable),
)  # fmt: skip
MAIN = SCENARIOS[0]  # the plot and the profile use this one


def select(keys: list[str] | None) -> list[Scenario]:
    if not keys:
        return list(SCENARIOS)
    by_key = {scenario.key: scenario for scenario in SCENARIOS}
    unknown = [key for key in keys if key not in by_key]
    if unknown:
        raise ValueError(f"unknown scenario {unknown[0]!r}; choose from {', '.join(by_key)}")
    return [by_key[key] for key in keys]
