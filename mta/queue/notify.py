"""Delivery status notifications: one DSN per attempt to the envelope sender (RFC 3464)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from mta.dsn import FailedRecipient, build_dsn
from mta.queue.meta import Meta

logger = logging.getLogger(__name__)

DsnSubmitter = Callable[[str, bytes], Awaitable[object]]


class DsnSender:
    """Builds the DSN for a message's failed recipients and queues it like any message."""

    def __init__(self, reporting_mta: str, read: Callable[[str], bytes]) -> None:
        self._reporting_mta = reporting_mta
        self._read = read
        self.submit: DsnSubmitter | None = None

    async def send(self, msg_id: str, meta: Meta, failed: list[FailedRecipient]) -> None:
        """Never raises (but CancelledError): a DSN that cannot be queued is logged."""
        if self.submit is None:
            logger.error("no DSN submitter: bounce for %s not sent", msg_id)
            return
        try:
            dsn = build_dsn(
                reporting_mta=self._reporting_mta,
                original_sender=meta["sender"],
                original_message=self._read(msg_id),
                arrival_date=meta["created"],
                recipients=failed,
                original_envelope_id=msg_id,
            )
            await self.submit(meta["sender"], dsn)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("could not queue the DSN for message %s", msg_id)
