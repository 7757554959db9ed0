"""The values the delivery engine exchanges with the queue manager."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mta.replies import Reply
from shaping.options import EgressPathConfig

DEFAULT_PATH = EgressPathConfig()

OutcomeKind = Literal["delivered", "transient", "permanent"]


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """The remote end of a session: the MX host `name` and the IP `addr` we connected to."""

    name: str
    addr: str

    def __str__(self) -> str:
        return f"{self.name}[{self.addr}]"


def reply_kind(reply: Reply) -> OutcomeKind:
    """2xx delivered, 5xx permanent; 4xx and anything malformed is transient."""
    if 200 <= reply.code < 300:
        return "delivered"
    if 500 <= reply.code < 600:
        return "permanent"
    return "transient"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one delivery attempt for one recipient.

    `command` names the step the reply answered: "connect", "EHLO", "STARTTLS", "MAIL",
    "RCPT", "DATA", "." (the reply after the final dot) or "dns".
    """

    reply: Reply
    command: str | None = None
    peer: PeerAddress | None = None
    tls_cipher: str | None = None
    tls_protocol_version: str | None = None

    @property
    def kind(self) -> OutcomeKind:
        return reply_kind(self.reply)


@dataclass(frozen=True, slots=True)
class Job:
    """One SMTP transaction's worth: `data` is CRLF message bytes, not dot-stuffed."""

    msg_id: str
    sender: str  # "" is the null sender
    recipients: tuple[str, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class Site:
    """A delivery destination, the key of a ready queue.

    `name` is the MX rollup name (sorted MX host names joined with "|"), or "relay:host:port"
    for a relay route. `hosts` are the preference groups, most preferred first; the order
    inside a group is shuffled at each connection attempt.
    """

    name: str
    hosts: tuple[tuple[str, ...], ...]
    port: int
    tls: str
    path: EgressPathConfig = DEFAULT_PATH  # the shaping settings of this egress path
    # The egress source and pool (mta.egress.sources); with a source, `name` is KumoMTA's
    # "source->site" ready queue name.
    source: str | None = None
    pool: str | None = None

    @property
    def base_name(self) -> str:
        """The site's name without the egress source ("mx.example", "relay:host:port")."""
        return self.name[len(self.source) + 2 :] if self.source else self.name


class PathThrottled(Exception):
    """No connection or message is allowed on this path now (shaping): try again after
    `retry_after` seconds. Not a delivery attempt: nothing was sent."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class SiteError(Exception):
    """Resolving a site failed; `outcome` applies to every recipient of the domain."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(str(outcome.reply))
        self.outcome = outcome

    @property
    def reply(self) -> Reply:
        return self.outcome.reply
