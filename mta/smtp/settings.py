"""What a session is configured with, and what it tells the server that owns it."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mta.replies import Reply
from mta.smtp.security import Security
from mta.smtp.types import EventLog

if TYPE_CHECKING:
    from mta.smtp.session import SmtpSession

__all__ = ["SessionHost", "SessionSettings"]


@dataclass(frozen=True, slots=True)
class SessionSettings:
    hostname: str
    idle_timeout: float
    data_timeout: float
    max_message_bytes: int
    max_errors: int
    smtputf8: bool
    tls_context: ssl.SSLContext | None  # STARTTLS (reloaded in place by TlsProvider)
    events: EventLog
    security: Security
    implicit_tls: bool = False  # the listener's transport is TLS from the first byte
    proxy_protocol: bool = False  # a PROXY v1/v2 header comes first, from a proxy network
    proxy_timeout: float = 10.0


class SessionHost(Protocol):
    """What a session tells its server about its life."""

    def session_opened(self, session: SmtpSession, peer_ip: str) -> Reply | None:
        """None admits the session; a Reply refuses it (sent as its greeting).

        Behind a PROXY header, `peer_ip` is the proxy's: `session_identified` follows.
        """
        ...

    def session_identified(self, session: SmtpSession, client_ip: str) -> Reply | None:
        """The real client of an admitted proxied session; a Reply refuses it."""
        ...

    def session_closed(self, session: SmtpSession) -> None: ...
