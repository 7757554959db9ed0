"""The suppression list: hard bounces add recipients, the accept path refuses them.

`Suppression.observe` is a RecordLog listener: a `Bounce` record whose class is one of
`[suppression] classes` adds its recipient for the record's tenant (meta `tenant`; none = the
default tenant) until `ttl` has passed. `check` is what the accept path asks; it fails open:
when the store cannot answer (Redis away), mail is accepted, the first failure is logged and
every one is counted (`mta_suppression_fail_open_total`), so Redis never blocks injection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from mta.config import SuppressionConfig
from mta.suppression.entry import Entry, Source, StoreUnavailable, normalize
from mta.suppression.store import LocalStore, SuppressionStore, TenantFilter

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 60.0  # expired entries are ignored at once; the sweep only frees them
BOUNCE = "Bounce"
T = TypeVar("T")


class Suppression:
    """The node's suppression list over one store (local SQLite or Redis)."""

    def __init__(
        self,
        config: SuppressionConfig,
        store: SuppressionStore,
        *,
        clock: Callable[[], float] = time.time,
        sweep_seconds: float = SWEEP_SECONDS,
    ) -> None:
        self.config = config
        self.store = store
        self._classes = frozenset(config.classes)
        self._clock = clock
        self._sweep_seconds = sweep_seconds
        self._pending: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._failing = False
        self.added: Counter[str] = Counter()  # by source
        self.refused = 0
        self.fail_open = 0
        self.errors: Counter[str] = Counter()  # by operation

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def entry_count(self) -> int | None:
        """Entries held by a node-local store (None for a shared one: not this node's count)."""
        return len(self.store) if isinstance(self.store, LocalStore) else None

    async def start(self) -> None:
        """Open the store (a local one loads its entries) and start the expiry sweep."""
        await self.store.open()
        self._sweeper = asyncio.create_task(self._sweep(), name="suppression-sweep")

    async def close(self) -> None:
        """Finish the additions under way, stop the sweep, close the store."""
        if self._pending:
            await asyncio.wait(set(self._pending))
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.store.close()

    # -- the accept path -------------------------------------------------------------------

    async def check(self, recipient: str, tenant: str | None) -> Entry | None:
        """The live entry refusing `recipient` for `tenant`, or None (also when the store
        cannot answer: fail open)."""
        if not self.enabled:
            return None
        try:
            entry = await self.store.get(tenant, normalize(recipient), self._clock())
        except StoreUnavailable as exc:
            self.fail_open += 1
            self._failed("lookup", exc)
            return None
        self._recovered()
        if entry is not None:
            self.refused += 1
        return entry

    # -- additions from bounces ------------------------------------------------------------

    def observe(self, record: Mapping[str, Any]) -> None:
        """RecordLog listener: a hard bounce of a configured class adds its recipient."""
        if not self.enabled or record.get("type") != BOUNCE:
            return
        classification = record.get("bounce_classification")
        recipient = record.get("recipient")
        if classification not in self._classes or not recipient:
            return
        meta = record.get("meta") or {}
        task = asyncio.get_running_loop().create_task(
            self._add_bounce(str(recipient), meta.get("tenant"), _reason(record), classification)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _add_bounce(
        self, recipient: str, tenant: Any, reason: str, classification: str
    ) -> None:
        # A store failure is logged and counted by add(); this bounce is not remembered.
        with contextlib.suppress(StoreUnavailable):
            await self.add(recipient, str(tenant) if tenant else None, reason, classification)

    # -- administration --------------------------------------------------------------------

    async def add(
        self,
        recipient: str,
        tenant: str | None,
        reason: str,
        classification: str,
        *,
        source: Source = "bounce",
        ttl: float | None = None,
    ) -> Entry:
        """Suppress `recipient` for `tenant` for `ttl` seconds (default `[suppression] ttl`);
        a second addition replaces the first. Raises StoreUnavailable."""
        now = self._clock()
        entry = Entry(
            tenant=tenant or None,
            recipient=normalize(recipient),
            reason=reason,
            classification=classification,
            source=source,
            created=now,
            expires=now + (self.config.ttl if ttl is None else ttl),
        )
        await self._guarded("add", self.store.put(entry))
        self.added[source] += 1
        logger.info("suppressed %s (tenant %s): %s", entry.recipient, tenant or "-", reason)
        return entry

    async def remove(self, recipient: str, tenant: str | None) -> bool:
        """Remove an entry; False when there was none. Raises StoreUnavailable."""
        return await self._guarded("remove", self.store.remove(tenant, normalize(recipient)))

    async def entries(self, tenant: TenantFilter, recipient: str | None = None) -> list[Entry]:
        """Live entries of `tenant` (or ALL_TENANTS), optionally of one recipient only."""
        wanted = None if recipient is None else normalize(recipient)
        found = await self._guarded("list", self.store.entries(tenant, wanted, self._clock()))
        return sorted(found, key=lambda e: (e.tenant or "", e.recipient))

    async def _guarded(self, operation: str, call: Awaitable[T]) -> T:
        try:
            result = await call
        except StoreUnavailable as exc:
            self._failed(operation, exc)
            raise
        self._recovered()
        return result

    def _failed(self, operation: str, exc: StoreUnavailable) -> None:
        self.errors[operation] += 1
        if not self._failing:  # once per outage, not once per message
            logger.error("suppression list unavailable (%s), accepting mail: %s", operation, exc)
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            logger.warning("suppression list available again")
        self._failing = False

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_seconds)
            try:
                await self.store.purge(self._clock())
            except StoreUnavailable as exc:
                self._failed("purge", exc)


def _reason(record: Mapping[str, Any]) -> str:
    """The remote server's reply, "550 5.1.1 user unknown", from the record's response."""
    response = record.get("response") or {}
    enhanced = response.get("enhanced_code") or {}
    code = response.get("code")
    parts = [str(code) if code else ""]
    if enhanced:
        parts.append(f"{enhanced.get('class')}.{enhanced.get('subject')}.{enhanced.get('detail')}")
    parts.append(str(response.get("content") or ""))
    return " ".join(part for part in parts if part)
