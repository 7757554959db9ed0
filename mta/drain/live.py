"""The drain a node runs on itself at SIGTERM when `[node] drain_to` is set.

The node has stopped taking mail and its deliveries have finished (`Node.stop`); what is
still queued is handed to the peer, for at most `[node] drain_to_timeout`. Whatever is not
handed over by then stays in the spool, safe, for the next start or `mta spool drain`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Iterable
from typing import Any

from mta.config import NodeConfig
from mta.drain.client import PeerClient, auth_header, read_first_line
from mta.drain.drainer import Drainer, DrainReport, live_candidates
from spool import Spool

logger = logging.getLogger(__name__)

PROGRESS_SECONDS = 5.0


class LiveDrain:
    """Hands a stopping node's queued messages to `[node] drain_to`."""

    def __init__(self, config: NodeConfig) -> None:
        """Reads the credential files now: a missing one stops the start, not the drain."""
        assert config.drain_to is not None
        self._config = config
        password = None
        if config.drain_password_file is not None:
            password = read_first_line(config.drain_password_file)
        self._auth = auth_header(
            user=config.drain_user, password=password, token_file=config.drain_token_file
        )
        PeerClient(config.drain_to)  # a bad URL stops the start too
        # One ConfigMap serves every pod of a StatefulSet: the pod drain_to names keeps its mail.
        self.is_self = _host_label(config.drain_to) == config.name.lower()
        self._last_progress = 0.0

    async def run(self, spool: Spool, queued: Iterable[str], recovered: Iterable[Any]) -> None:
        """Drain `queued` message ids then the rest of `recovered`, within the timeout."""
        assert self._config.drain_to is not None
        if self.is_self:
            logger.info("drain_to %s is this node: its mail stays here", self._config.drain_to)
            return
        before = len(spool)
        logger.info("draining %d spooled messages to %s", before, self._config.drain_to)
        try:
            report = await self._drain(spool, queued, recovered)
        except Exception:  # the rest of the stop must go on: the spool still holds it all
            logger.exception("drain to %s failed", self._config.drain_to)
            return
        _summary(report, len(spool))

    async def _drain(
        self, spool: Spool, queued: Iterable[str], recovered: Iterable[Any]
    ) -> DrainReport:
        assert self._config.drain_to is not None
        async with PeerClient(self._config.drain_to, auth_header=self._auth) as client:
            drainer = Drainer(
                spool, client, concurrency=self._config.drain_concurrency, progress=self._log
            )
            try:
                async with asyncio.timeout(self._config.drain_to_timeout):
                    await drainer.run(live_candidates(spool, queued, recovered))
            except TimeoutError:
                drainer.report.stopped = f"drain_to_timeout ({self._config.drain_to_timeout:g}s)"
        return drainer.report

    def _log(self, report: DrainReport) -> None:
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_SECONDS:
            self._last_progress = now
            logger.info("drain: %d messages handed over", report.removed)


def _summary(report: DrainReport, left: int) -> None:
    logger.info(
        "drain: %d handed over, %d already there; %d left in the spool%s",
        report.handed_over,
        report.already_there,
        left,
        f" (stopped: {report.stopped})" if report.stopped else "",
    )


def _host_label(url: str) -> str:
    """The first label of the URL's host: the pod name in `http://mta-0.mta-headless:8000`."""
    return (urllib.parse.urlsplit(url).hostname or "").split(".")[0].lower()
