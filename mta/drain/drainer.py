"""Hand every queued message of a spool to a peer, removing each only after the peer's 200.

Used by `mta spool drain` (a stopped node's spool) and by the node itself at SIGTERM when
`[node] drain_to` is set. Restartable: the local copy is removed only once the peer has it,
so an interruption at any point leaves every message in at least one spool, and a rerun
sends what is left (the peer acknowledges without a second copy what it already has; a
duplicate is possible only for a message in flight at a crash, once the peer has delivered
it and forgotten its id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from mta.drain.client import PeerClient, PeerError
from mta.drain.wire import WireError, check_message_meta, is_message
from spool import Spool, SpoolError, UnknownMessage

logger = logging.getLogger(__name__)

MAX_ATTEMPTS: Final = 6  # per message, while the peer answers 503 or not at all
FIRST_BACKOFF: Final = 0.5  # seconds, doubled after each failed attempt
MAX_BACKOFF: Final = 8.0

Candidate = tuple[str, Mapping[str, Any]]  # (message id, its stored meta)


@dataclass
class DrainReport:
    """What a drain did; `stopped` says why it ended before the last message, if it did."""

    handed_over: int = 0  # stored by the peer now
    already_there: int = 0  # the peer had it (a retry): removed here all the same
    skipped: int = 0  # spool entries that are not messages (deferred inject batches)
    refused: dict[str, str] = field(default_factory=dict)  # message id -> why it stays
    stopped: str | None = None

    @property
    def removed(self) -> int:
        return self.handed_over + self.already_there


class Drainer:
    """Moves messages from `spool` to the peer behind `client`, `concurrency` at a time."""

    def __init__(
        self,
        spool: Spool,
        client: PeerClient,
        *,
        concurrency: int,
        progress: Callable[[DrainReport], None] | None = None,
        first_backoff: float = FIRST_BACKOFF,
    ) -> None:
        self._spool = spool
        self._client = client
        self._concurrency = concurrency
        self._progress = progress or (lambda _report: None)
        self._first_backoff = first_backoff
        self.report = DrainReport()

    async def run(self, candidates: Iterable[Candidate]) -> DrainReport:
        """Drain `candidates` (read lazily, shared by the workers); returns the report."""
        shared = iter(candidates)
        async with asyncio.TaskGroup() as group:
            for i in range(self._concurrency):
                group.create_task(self._worker(shared), name=f"drain-worker-{i}")
        return self.report

    async def _worker(self, candidates: Iterator[Candidate]) -> None:
        for msg_id, meta in candidates:
            if self.report.stopped is not None:
                return
            await self._one(msg_id, meta)
            self._progress(self.report)

    async def _one(self, msg_id: str, meta: Mapping[str, Any]) -> None:
        if not is_message(meta):
            logger.warning("%s: %s entry left in the spool", msg_id, meta.get("kind"))
            self.report.skipped += 1
            return
        try:
            check_message_meta(dict(meta))
            data = self._spool.read(msg_id)
        except UnknownMessage:
            return  # gone meanwhile (delivered by the node before it stopped)
        except (WireError, SpoolError) as exc:
            self._refuse(msg_id, f"cannot be read here: {exc}")
            return
        try:
            stored = await self._send(msg_id, meta, data)
        except PeerError as exc:
            if exc.transient or exc.unauthorized:
                self.report.stopped = str(exc)  # no other message would get through
            else:
                self._refuse(msg_id, str(exc))
            return
        try:
            await self._spool.remove(msg_id)
        except SpoolError as exc:  # the peer has it; a rerun is answered "already there"
            self.report.stopped = f"cannot remove {msg_id} from the spool: {exc}"
            return
        if stored:
            self.report.handed_over += 1
        else:
            self.report.already_there += 1

    async def _send(self, msg_id: str, meta: Mapping[str, Any], data: bytes) -> bool:
        backoff = self._first_backoff
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return await self._client.hand_over(msg_id, meta, data)
            except PeerError as exc:
                if not exc.transient or attempt == MAX_ATTEMPTS or self.report.stopped:
                    raise
                logger.info("%s: %s; trying again in %.1fs", msg_id, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
        raise AssertionError("unreachable")

    def _refuse(self, msg_id: str, reason: str) -> None:
        logger.error("%s stays in the spool: %s", msg_id, reason)
        self.report.refused[msg_id] = reason


def recovered_candidates(recovered: Iterable[Any]) -> Iterator[Candidate]:
    """The (id, meta) pairs of `Spool.open()`'s messages, read as they are iterated."""
    for message in recovered:
        yield message.id, message.meta


def live_candidates(
    spool: Spool, queued: Iterable[str], recovered: Iterable[Any]
) -> Iterator[Candidate]:
    """A running node's messages: those its queue holds, then any recovered at start that
    the queue had not taken back yet (it was stopped while re-queueing them)."""
    seen: set[str] = set()
    for msg_id in queued:
        seen.add(msg_id)
        try:
            meta = spool.read_meta(msg_id)
        except UnknownMessage:
            continue
        except SpoolError as exc:
            logger.error("%s stays in the spool: %s", msg_id, exc)
            continue
        yield msg_id, meta
    for message in recovered:
        if message.id not in seen:
            yield message.id, message.meta
