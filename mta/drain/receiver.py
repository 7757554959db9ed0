"""The receiving side of a drain: store a handed-over message as if it had been accepted here.

The message keeps its original id, bytes, creation time and remaining recipients per domain.
It is not signed again (DKIM signed it at its first reception, and a retry must never
re-sign), and not checked against the suppression list again (the first node did). Like the
accept path (`mta.accept`), it is acknowledged only once the spool has synced it, and then
queued and logged (a Reception record per recipient, reception protocol "Drain").

Idempotent: an id already in the spool, being stored, or in the accepted-ids record
(`mta.drain.accepted`, keyed by id and hop count) is acknowledged again without a second copy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from mta.drain.accepted import AcceptedIds
from mta.drain.wire import Handover, hops
from mta.logs import PeerAddress, RecordLog
from mta.queue.manager import QueueManager
from mta.queue.meta import record_meta
from mta.replies import S250_QUEUED, S451_SPOOL_UNAVAILABLE, TransientError
from spool import Spool, SpoolError

logger = logging.getLogger(__name__)

RECEPTION_PROTOCOL = "Drain"


class HandoverReceiver:
    """Stores handed-over messages durably, once each."""

    def __init__(
        self,
        *,
        spool: Spool,
        queue: QueueManager,
        records: RecordLog,
        accepted: AcceptedIds,
        unhealthy_reason: Callable[[], str | None],
    ) -> None:
        self._spool = spool
        self._queue = queue
        self._records = records
        self._accepted = accepted
        self._unhealthy_reason = unhealthy_reason
        self._storing: dict[str, asyncio.Task[None]] = {}
        self._started = False

    async def start(self) -> None:
        """Read the accepted-ids record (once the spool is open: it lives in its directory)."""
        await asyncio.to_thread(self._accepted.load)
        self._started = True

    async def accept(self, handover: Handover, peer_address: str) -> bool:
        """Store `handover` durably; True when stored now, False when it was already here.

        Raises TransientError when the node cannot store it (spool unavailable, stopping).
        """
        msg_id = handover.id
        storing = self._storing.get(msg_id)
        if storing is not None:  # a retry while the first attempt is still writing
            await asyncio.shield(storing)
            return False
        if msg_id in self._spool or _accepted_key(handover) in self._accepted:
            return False
        reason = self._unhealthy_reason() if self._started else "waiting for spool startup"
        if reason is not None:
            raise TransientError(S451_SPOOL_UNAVAILABLE, reason)
        task = asyncio.create_task(self._store(handover, peer_address), name=f"drain-{msg_id}")
        self._storing[msg_id] = task
        task.add_done_callback(self._stored)
        await asyncio.shield(task)  # a client hanging up must not stop a half-done store
        return True

    def _stored(self, task: asyncio.Task[None]) -> None:
        self._storing.pop(task.get_name().removeprefix("drain-"), None)
        if not task.cancelled():
            task.exception()  # retrieved: the caller that started it may have hung up

    async def _store(self, handover: Handover, peer_address: str) -> None:
        legs = {domain: leg for domain, leg in handover.meta["legs"].items() if leg["rcpts"]}
        meta = {**handover.meta, "size": len(handover.data), "legs": legs}
        try:
            await self._spool.store(handover.id, meta, handover.data)
        except SpoolError as exc:
            logger.error("spool refused message %s from %s: %s", handover.id, peer_address, exc)
            raise TransientError(S451_SPOOL_UNAVAILABLE, str(exc)) from exc
        self._queue.insert(handover.id, meta)
        self._log_reception(handover.id, meta, peer_address)
        try:
            await self._accepted.add(_accepted_key(handover))
        except OSError as exc:
            # Stored all the same: only a retry after its delivery could duplicate it.
            logger.error("cannot record accepted drain id %s: %s", handover.id, exc)

    def _log_reception(self, msg_id: str, meta: dict[str, Any], peer_address: str) -> None:
        peer = PeerAddress(name="", addr=peer_address)
        extra = record_meta(meta)
        for leg in meta["legs"].values():
            for rcpt in leg["rcpts"]:
                self._records.record(
                    "Reception",
                    id=msg_id,
                    sender=meta["sender"],
                    recipient=rcpt,
                    queue=leg.get("queue") or "",
                    size=meta["size"],
                    response=S250_QUEUED,
                    peer_address=peer,
                    created=meta["created"],
                    meta=extra,
                    reception_protocol=RECEPTION_PROTOCOL,
                )


def _accepted_key(handover: Handover) -> str:
    return f"{handover.id}:{hops(handover.meta)}"
