"""What the SMTP front end hands to the rest of the node, and what it needs from it."""

from __future__ import annotations

from typing import Protocol

from mta.inbound import Inbound
from mta.replies import Reply

__all__ = ["AcceptPath", "EventLog", "Inbound"]


class AcceptPath(Protocol):
    """The node's one accept path (spool, then queue, then the Reception record)."""

    def unhealthy_reason(self) -> str | None:
        """Cheap and synchronous; not None means new mail is refused."""
        ...

    async def accept(self, inbound: Inbound) -> str:
        """Durable on return; returns the message id. Raises MtaError subclasses."""
        ...

    async def recipient_problem(self, recipient: str) -> Reply | None:
        """The reply refusing `recipient` at RCPT (a suppressed address), or None."""
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
