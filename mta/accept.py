"""The one accept path: spool first (durable), then queue, then the Reception record.

SMTP and HTTP both end here. Nothing is acknowledged to a client before `accept` returns, and
`accept` returns only after the spool has synced the message.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mta.dkim import DkimSigner
from mta.ids import unique_hex
from mta.inbound import Inbound
from mta.logs import PeerAddress, RecordLog
from mta.queue.manager import QueueManager
from mta.queue.meta import Meta, new_meta, recipient_domain, record_meta
from mta.replies import S250_QUEUED, S451_SPOOL_UNAVAILABLE, Reply, TransientError
from mta.suppression import RecipientSuppressed, Suppression
from spool import Spool, SpoolError

logger = logging.getLogger(__name__)

TENANT_HEADER = b"x-tenant"
CAMPAIGN_HEADER = b"x-campaign"
_HEADER_LINE = re.compile(rb"^([!-9;-~]+):[ \t]*(.*)$")
MAX_META_VALUE = 128  # a tenant or campaign name longer than this is a mistake, not a name


class Acceptor:
    """Stores accepted mail durably and hands it to the queue manager."""

    def __init__(
        self,
        *,
        spool: Spool,
        queue: QueueManager,
        records: RecordLog,
        default_domain: str,
        clock: Callable[[], float] = time.time,
        signer: DkimSigner | None = None,
        suppression: Suppression | None = None,
        log_headers: Sequence[str] = (),
    ) -> None:
        self._spool = spool
        # `[log] headers`: kept with the message so that every record of it carries them.
        self._log_headers = tuple(name.encode("ascii").lower() for name in log_headers)
        self._log_header_names = tuple(log_headers)
        self._suppression = suppression
        self._signer = signer
        self._queue = queue
        self._records = records
        self._default_domain = default_domain
        self._clock = clock
        self.refusing: str | None = None  # set while shutting down
        # Metrics: `on_stored(reception_protocol, seconds)` once a message is durable, queued
        # and logged, i.e. when the client may be answered (its accept latency).
        self.on_stored: Callable[[str, float], None] | None = None

    def unhealthy_reason(self) -> str | None:
        return self.refusing or self._spool.unhealthy_reason()

    async def accept(self, inbound: Inbound) -> str:
        """Store and queue a client's message; durable on return. Raises TransientError."""
        reason = self.unhealthy_reason()
        if reason is not None:
            raise TransientError(S451_SPOOL_UNAVAILABLE, reason)
        inbound = await self.without_suppressed(inbound, rcpt_checked=True)
        return await self.store(inbound)

    async def recipient_problem(self, recipient: str) -> Reply | None:
        """SMTP RCPT: 550 5.1.1 when `recipient` has no route (a transport-map domain's
        unknown address) or is suppressed for the default tenant.

        A message's own tenant shows only in its headers (X-Tenant), after DATA: `accept`
        checks the recipients of such a message then."""
        refused = self._unroutable(recipient, None)
        if refused is not None or self._suppression is None:
            return refused
            return None
        entry = await self._suppression.check(recipient, None)
        return None if entry is None else entry.reply()

    async def without_suppressed(self, inbound: Inbound, *, rcpt_checked: bool = False) -> Inbound:
        """`inbound` without the recipients suppressed for its tenant, each logged as a
        Rejection; raises RecipientSuppressed (550 5.1.1) when none is left.

        `rcpt_checked`: the default tenant's list was already applied at RCPT (SMTP).
        Recipients without a route (`mta.routing`, 550 5.1.1) are refused the same way."""
        tenant = self._tenant_campaign(inbound)[0]
        if rcpt_checked and tenant is None:
            return inbound
        kept: list[str] = []
        refused: list[Reply] = []
        for rcpt in inbound.recipients:
            reply = self._unroutable(rcpt, tenant)
            if reply is None and self._suppression is not None:
                entry = await self._suppression.check(rcpt, tenant)
                reply = None if entry is None else entry.reply()
            if reply is None:
                kept.append(rcpt)
            else:
                refused.append(reply)
                self._log_rejection(inbound, rcpt, reply, tenant)
        if not kept:
            raise RecipientSuppressed(refused[0])
        return dataclasses.replace(inbound, recipients=tuple(kept)) if refused else inbound

    def _unroutable(self, recipient: str, tenant: str | None) -> Reply | None:
        domain = recipient_domain(recipient, self._default_domain)
        return self._queue.router.recipient_problem(recipient, domain, tenant)

    async def store(self, inbound: Inbound, msg_id: str | None = None) -> str:
        """Store and queue a message, also while shutting down (the node's own DSNs).

        `msg_id` lets a caller that must be idempotent across restarts choose the id.
        """
        started = time.perf_counter()
        msg_id = msg_id or new_message_id()
        if self._signer is not None:  # sign once, here: retries and restarts never re-sign
            signed = await self._signer.sign(inbound.data, inbound.sender)
            inbound = dataclasses.replace(inbound, data=signed)
        tenant, campaign = self._tenant_campaign(inbound)
        meta = new_meta(
            sender=inbound.sender,
            recipients=inbound.recipients,
            created=self._clock(),
            size=len(inbound.data),
            reception_protocol=inbound.reception_protocol,
            peer=inbound.peer_address,
            tenant=tenant,
            campaign=campaign,
            default_domain=self._default_domain,
            leg_key=lambda rcpt, domain: self._queue.router.leg_key(rcpt, domain, tenant),
        )
        extra = front_end_meta(inbound.meta)
        if extra:  # stored, so every later record of the message carries it (`record_meta`)
            meta["meta"] = extra
        if self._log_headers:
            values = header_values(inbound.data, self._log_headers)
            found = zip(self._log_header_names, values, strict=True)
            meta["headers"] = {name: value for name, value in found if value is not None}
        try:
            await self._spool.store(msg_id, meta, inbound.data)
        except SpoolError as exc:
            logger.error("spool refused message from %s: %s", inbound.peer_address, exc)
            raise TransientError(S451_SPOOL_UNAVAILABLE, str(exc)) from exc
        self._queue.insert(msg_id, meta)
        self._log_reception(msg_id, meta, inbound)
        if self.on_stored is not None:
            self.on_stored(inbound.reception_protocol, time.perf_counter() - started)
        return msg_id

    @staticmethod
    def _tenant_campaign(inbound: Inbound) -> list[str | None]:
        tenant, campaign = inbound.meta.get("tenant"), inbound.meta.get("campaign")
        if tenant is None and campaign is None:
            return header_values(inbound.data, (TENANT_HEADER, CAMPAIGN_HEADER))
        return [str(tenant) if tenant else None, str(campaign) if campaign else None]

    def _log_reception(self, msg_id: str, meta: Meta, inbound: Inbound) -> None:
        peer = PeerAddress(name=inbound.peer_name, addr=inbound.peer_address)
        extra = record_meta(meta)
        legs = {rcpt: leg for leg in meta["legs"].values() for rcpt in leg["rcpts"]}
        for rcpt in inbound.recipients:
            leg = legs[rcpt]
            self._records.record(
                "Reception",
                id=msg_id,
                sender=inbound.sender,
                recipient=rcpt,
                queue=leg["queue"],
                size=len(inbound.data),
                response=S250_QUEUED,
                peer_address=peer,
                created=meta["created"],
                meta=extra,
                headers=meta.get("headers"),
                reception_protocol=inbound.reception_protocol,
            )

    def _log_rejection(self, inbound: Inbound, rcpt: str, reply: Reply, tenant: str | None) -> None:
        self._records.record(
            "Rejection",
            id="",
            sender=inbound.sender,
            recipient=rcpt,
            response=reply,
            peer_address=PeerAddress(name=inbound.peer_name, addr=inbound.peer_address),
            meta={"tenant": tenant} if tenant else None,
            reception_protocol=inbound.reception_protocol,
        )


def front_end_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The `meta` of the message's log records from what the front end knew: the HTTP API's
    recipient `metadata` as keys of their own (KumoMTA sets them on the message), and any
    other key but tenant and campaign (stored apart)."""
    extra = {k: v for k, v in meta.items() if k not in ("tenant", "campaign", "rcpt_meta")}
    extra.update(meta.get("rcpt_meta") or {})
    return extra


def new_message_id() -> str:
    return unique_hex()


def header_values(data: bytes, names: tuple[bytes, ...]) -> list[str | None]:
    """The first value of each named header in the header block (unfolded, stripped)."""
    found: dict[bytes, str] = {}
    end = data.find(b"\r\n\r\n")
    block = data if end < 0 else data[:end]
    lines = block.split(b"\r\n")
    for i, line in enumerate(lines):
        match = _HEADER_LINE.match(line)
        if match is None or match[1].lower() not in names or match[1].lower() in found:
            continue
        value = match[2]
        for cont in lines[i + 1 :]:
            if cont[:1] not in (b" ", b"\t"):
                break
            value += b" " + cont.strip()
        text = value.decode("utf-8", "replace").strip()
        found[match[1].lower()] = text[:MAX_META_VALUE]
    return [found.get(name) or None for name in names]
