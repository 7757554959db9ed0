"""What an outbound SMTP session is given and what it raises.

The settings of one session (`SessionSettings`: per-phase timeouts, TLS policy, relay
credentials, egress source), the reply codes the session acts on, and its errors:
`HostFailure` (try the next host), `SourceUnavailable` (no host would do better),
`StaleSession` (a pooled session died: open a new one).
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiosmtplib import SMTPException

from mta.config import DeliveryConfig
from mta.replies import Reply
from shaping.options import EgressPathConfig

from .tls import TlsContexts
from .types import Outcome

SERVICE_READY = 220
SERVICE_CLOSING = 421  # RFC 5321 3.8: the server is closing the channel
START_MAIL_INPUT = 354
AUTH_SUCCESSFUL = 235  # RFC 4954 6
NETWORK_ERRORS = (SMTPException, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds per SMTP phase (RFC 5321 4.5.3.2)."""

    connect: float
    ehlo: float
    mail: float
    rcpt: float
    data: float
    data_dot: float

    @classmethod
    def from_config(cls, config: DeliveryConfig | EgressPathConfig) -> Timeouts:
        return cls(
            config.connect_timeout,
            config.ehlo_timeout,
            config.mail_from_timeout,
            config.rcpt_to_timeout,
            config.data_timeout,
            config.data_dot_timeout,
        )


class Credentials(Protocol):
    """SASL credentials of a relay route (mta.routing.PasswordSource)."""

    username: str

    def password(self) -> str:
        """The current password; raises OSError when it cannot be read now."""
        ...


@dataclass(frozen=True, slots=True)
class SessionSettings:
    ehlo_name: str
    port: int
    tls_mode: str
    timeouts: Timeouts
    tls_contexts: TlsContexts
    # The path's `opportunistic_tls_reconnect_on_failed_handshake`.
    reconnect_in_plain: bool = False
    # Relay routes (mta.delivery.relay): TLS from the first byte, verified per this mode
    # ("Required" or "RequiredInsecure"); SASL credentials, only ever sent under TLS; an
    # LMTP server's unix socket.
    implicit_tls: str | None = None
    credentials: Credentials | None = None
    socket_path: str | None = None
    # The egress source (mta.egress.sources): a local address to bind, or a `connector`
    # that returns a socket connected to (address, port), through a SOCKS5 proxy.
    source_address: str | None = None
    connector: Connector | None = None


Connector = Callable[[str, int], Awaitable[socket.socket]]


class SourceUnavailable(Exception):
    """The egress source cannot connect anywhere now (its proxy is down, its address is not
    on this machine): no other host of the site would do better."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HostFailure(Exception):
    """This host cannot take mail now; `outcome` says why. Try the next one."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(str(outcome.reply))
        self.outcome = outcome


class TlsHandshakeFailure(HostFailure):
    """The TLS handshake after STARTTLS failed (a certificate that does not verify too)."""


class StaleSession(Exception):
    """A reused session was dead before the server answered: open a new one."""


class _ProtocolError(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply
