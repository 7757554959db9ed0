"""The queue manager's state: where every leg is, what it looks like from outside, how it is
persisted, and the administrator's actions on single legs (`mta.queue.admin` calls them).

A leg is in exactly one place at a time: the scheduler (waiting for its time), the due line
(waiting for a promoter), the overflow (due, waiting for room in its site's full ready queue),
a ready queue, or `handling` (being promoted or attempted).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType

from mta.config import Config, QueueConfig
from mta.queue.overflow import Overflow
from mta.queue.ports import Key, SpoolLike
from mta.queue.queued import QueuedLeg, QueuedMessage
from mta.queue.ready import ReadyQueue
from mta.queue.scheduler import Entry, Scheduler

logger = logging.getLogger("mta.queue.manager")  # one logger name for the queue manager


class QueueState:
    """The containers of the queue manager (its subclass moves legs between them)."""

    def __init__(self, config: Config, spool: SpoolLike, clock: Callable[[], float]) -> None:
        self._config = config
        self._spool = spool
        self._clock = clock
        self._messages: dict[str, QueuedMessage] = {}
        self._scheduler: Scheduler[Key] = Scheduler(self._on_due, clock)
        self._due: deque[Key] = deque()
        self._due_event = asyncio.Event()
        self._ready: dict[str, ReadyQueue[Key]] = {}
        self._overflow: Overflow[Key] = Overflow()  # due legs waiting for room in a ready queue
        # Legs a task is working on: key -> ready queue name while attempted, None while
        # promoted. An admin sweep leaves them alone: they pass the gate on their own.
        self._handling: dict[Key, str | None] = {}

    def _on_due(self, key: Key) -> None:
        self._due.append(key)
        self._due_event.set()

    async def _store(self, msg_id: str, meta: QueuedMessage) -> None:
        """Persist a message's legs: update it, or remove it once no leg is left."""
        if meta.legs():
            await self._persist(self._spool.update(msg_id, meta.to_json()), msg_id)
        elif self._messages.pop(msg_id, None) is not None:
            # (Two legs finishing together both see no legs left; only one removes.) The
            # worker does not wait for the removal's commit: a crash before it means the
            # message is delivered once more at restart, at least once, as in Postfix.
            try:
                self._spool.remove_soon(msg_id).add_done_callback(_removal_failed)
            except Exception as exc:  # the spool closed under a late attempt
                _log_removal_failure(exc)

    async def _persist(self, write: Awaitable[None], msg_id: str) -> None:
        try:
            await write
        except asyncio.CancelledError:
            raise
        except Exception:
            # The in-memory state goes on; at worst a restart re-attempts (at-least-once).
            logger.exception("could not record the state of message %s in the spool", msg_id)

    # -- introspection ---------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        return {
            "messages": len(self._messages),
            "scheduled": len(self._scheduler),
            "due": len(self._due) + len(self._overflow),
            "ready": sum(len(ready) for ready in self._ready.values()),
            "in_flight": sum(ready.busy for ready in self._ready.values()),
        }

    def scheduled_queues(self) -> dict[str, int]:
        return self._scheduler.queue_sizes()

    def ready_queues(self) -> dict[str, int]:
        return {name: len(ready) for name, ready in self._ready.items()}

    def is_idle(self) -> bool:
        stats = self.stats()
        return stats["due"] == 0 and stats["ready"] == 0 and stats["in_flight"] == 0

    def _leg(self, key: Key) -> QueuedLeg | None:
        meta = self._messages.get(key[0])
        return None if meta is None else meta.leg(key[1])

    def _get_leg(self, key: Key) -> QueuedLeg:
        """The leg of a key known to be queued (KeyError otherwise)."""
        leg = self._leg(key)
        if leg is None:
            raise KeyError(key)
        return leg

    # -- administration (read-only views and the actions of mta.queue.admin) ----------------

    @property
    def queue_config(self) -> QueueConfig:
        return self._config.queue

    @property
    def messages(self) -> Mapping[str, QueuedMessage]:
        """Every queued message by id (live: read, never change; they read like their
        stored meta, `message["legs"][domain]["rcpts"]`)."""
        return MappingProxyType(self._messages)

    @property
    def handling(self) -> Mapping[Key, str | None]:
        """Legs being promoted (None) or attempted (their ready queue name)."""
        return MappingProxyType(self._handling)

    @property
    def ready_queue_map(self) -> Mapping[str, ReadyQueue[Key]]:
        return MappingProxyType(self._ready)

    def scheduled(self, key: Key) -> Entry[Key] | None:
        """The scheduler's entry (due time, queue) of a leg waiting for its time."""
        return self._scheduler.get(key)

    def last_change(self, queue: str) -> float | None:
        return self._scheduler.last_change(queue)

    def body(self, msg_id: str) -> bytes:
        return self._spool.read(msg_id)

    async def drop_leg(self, key: Key) -> None:
        """Remove a leg (an administrator bounced it; no DSN) and persist the message."""
        meta = self._messages.get(key[0])
        if meta is None or meta.drop_leg(key[1]) is None:
            return
        self._scheduler.cancel(key)
        self._overflow.discard(key)
        await self._store(key[0], meta)

    def hold(self, key: Key, until: float) -> None:
        """Keep a leg in its scheduled queue until `until`; not a delivery attempt.

        The stored due time stays: a restart forgets admin rules, so it must not wait then.
        """
        leg = self._leg(key)
        if leg is not None:
            self._scheduler.cancel(key)
            self._overflow.discard(key)
            self._scheduler.schedule(key, until, leg.queue)

    def release(self, key: Key, held_until: float) -> None:
        """Make a leg held until `held_until` due now (its suspension was lifted early)."""
        entry = self._scheduler.get(key)
        if entry is not None and entry.due == held_until and self._scheduler.cancel(key):
            self._on_due(key)

    def set_ready_suspended(self, name: str, suspended: bool) -> None:
        ready = self._ready.get(name)
        if ready is not None:
            ready.suspended = suspended


def _removal_failed(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        _log_removal_failure(exc)


def _log_removal_failure(exc: BaseException) -> None:
    # The message stays in the spool: a restart delivers it once more (at least once).
    logger.error("could not remove a delivered message from the spool: %s", exc)
