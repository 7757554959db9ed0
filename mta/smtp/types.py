"""What the SMTP front end hands to the rest of the node, and what it needs from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mta.replies import Reply


@dataclass(frozen=True, slots=True)
class Inbound:
    """One received message, ready for the accept path.

    `data` is the whole message with CRLF line endings, our Received header prepended and
    Message-ID/Date added when the client left them out. `sender` is "" for the null
    reverse-path <>. `reception_protocol` is the Received header's "with" value.
    """

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    reception_protocol: str
    peer_address: str
    peer_name: str
    smtputf8: bool


class AcceptPath(Protocol):
    """The node's one accept path (spool, then queue, then the Reception record)."""

    def unhealthy_reason(self) -> str | None:
        """Cheap and synchronous; not None means new mail is refused."""
        ...

    async def accept(self, inbound: Inbound) -> str:
        """Durable on return; returns the message id. Raises MtaError subclasses."""
        ...


class EventLog(Protocol):
    """Where inbound 4xx/5xx replies are recorded (KumoMTA "Rejection" records)."""

    def rejection(
        self,
        *,
        sender: str | None,
        recipient: str | None,
        reply: Reply,
        command: str,
        peer_address: str,
    ) -> None:
        """Record one rejection; must not block."""
        ...
