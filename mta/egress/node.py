"""A node's egress side, built from the config: live shaping rules, throttles and leases
(memory or Redis), and automation (on the node, or through TSA daemons)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from mta.config import Config
from mta.logs import RecordLog
from mta.queue.admin import QueueAdmin
from mta.queue.rates import QueueRates
from shaping.tsa.client import TsaConfigPoller, TsaSubscriber
from shaping.tsa.link import read_token
from shaping.tsa.publisher import TsaPublisher

from .automation import AutomationApplier, LocalAutomation
from .limits import build_limits
from .rules import NodeRules
from .sources import EgressSources

logger = logging.getLogger(__name__)

OUTBOX_DIR: Final = "tsa-outbox"


class Egress:
    """Owns what the delivery engine consults before each connection and message."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.rules = NodeRules(config)
        self.limits = build_limits(config.redis)
        # [egress] sources and pools; None: the kernel picks the address, as without them.
        self.sources = EgressSources(config.egress) if config.egress.pools else None
        self.local: LocalAutomation | None = None
        self.publisher: TsaPublisher | None = None
        self.subscriber: TsaSubscriber | None = None
        self.applier: AutomationApplier | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []

    @property
    def tsa_urls(self) -> tuple[str, ...]:
        return self.config.tsa.publish

    def queue_rates(self) -> QueueRates | None:
        """`[[queue.rates]]` on the node's throttle (shared through Redis when configured)."""
        rates = self.config.queue.rates
        return QueueRates(rates, self.limits.shaper.throttle) if rates else None

    async def start(self, admin: QueueAdmin, records: RecordLog) -> None:
        """Watch the shaping files; run automation here, or follow the TSAs."""
        self._spawn(self.rules.watch(), "shaping-files")
        if self.config.tsa.publish or self.config.tsa.subscribe:
            self.applier = AutomationApplier(admin, origin="TSA")
            await self._follow_tsa(records, self.applier)
        else:
            self.applier = AutomationApplier(admin, origin="automation")
            self.local = LocalAutomation(self.rules, self.applier)
            records.add_listener(self.local.observe)
            self._spawn(self.local.expire_overrides(), "automation-expiry")
        admin.summary_sections["shaping_overrides"] = self.applier.overrides

    async def _follow_tsa(self, records: RecordLog, applier: AutomationApplier) -> None:
        tsa = self.config.tsa
        token = read_token(tsa.token_file) if tsa.token_file is not None else None
        if tsa.publish:
            outbox = tsa.outbox_path or Path(self.config.spool.path) / OUTBOX_DIR
            self.publisher = TsaPublisher(
                tsa.publish,
                outbox,
                token=token,
                batch_size=tsa.batch_size,
                batch_delay=tsa.batch_delay,
                max_records=tsa.outbox_max_records,
            )
            await self.publisher.start()
            records.add_listener(self.publisher.publish)
            self._closers.append(self.publisher.close)
        url = tsa.subscribe or tsa.publish[0]
        self.subscriber = TsaSubscriber(url, applier.apply, token=token)
        poller = TsaConfigPoller(
            url, self.rules.set_overrides, token=token, interval=tsa.poll_interval
        )
        for part in (self.subscriber, poller):
            await part.start()
            self._closers.append(part.close)

    def _spawn(self, work: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for close in reversed(self._closers):
            await close()
        self._closers.clear()
        await self.limits.close()
