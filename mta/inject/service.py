"""The inject service behind `POST /api/inject/v1`: a thin async layer over the pure parts.

`inject` checks and compiles the request (400/422 before anything is stored), then either
generates and stores one message per recipient and answers once every one of them is durable,
or (`deferred_generation`) stores the request itself as one spool entry, answers at once and
expands it in the background, at most `workers` batches at a time. Messages of a request are
stored concurrently, in chunks, so the spool's group commit writes them with few fsyncs; the
next chunk is generated while the previous one is being written.

`deferred_spool` is accepted and has no effect: every message is spooled before the answer
(a stronger guarantee than KumoMTA's option to skip the spool).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from mta.inbound import Inbound
from mta.inject import batch
from mta.inject.addresses import AddressChecker
from mta.inject.errors import InjectError, RecipientError
from mta.inject.generate import RECEPTION_PROTOCOL, Generated, RequestPlan
from mta.inject.schema import InjectRequest, parse_request
from mta.inject.templates import TemplateEngine
from mta.replies import S451_SPOOL_UNAVAILABLE, TransientError
from mta.suppression import RecipientSuppressed
from spool import SpoolError

logger = logging.getLogger(__name__)

CHUNK = 100  # messages stored concurrently: one or two group commits
RETRY_SECONDS = 5.0  # a deferred batch retries a chunk the spool refused after this long

Outcome = str | None  # None: stored; else the reason it was not


class _Refused(str):
    """An outcome: the node refused to store the message (TransientError), a retry may work."""


class _Suppressed(str):
    """An outcome: the recipient is on the suppression list; nothing was stored."""


class AcceptorLike(Protocol):
    def unhealthy_reason(self) -> str | None: ...
    async def store(self, inbound: Inbound, msg_id: str | None = None) -> str: ...
    async def without_suppressed(self, inbound: Inbound) -> Inbound: ...


class SpoolLike(Protocol):
    async def store(self, msg_id: str, meta: Mapping[str, Any], data: bytes) -> None: ...
    async def update(self, msg_id: str, meta: Mapping[str, Any]) -> None: ...
    async def remove(self, msg_id: str) -> None: ...
    def read(self, msg_id: str) -> bytes: ...
    def __contains__(self, msg_id: object) -> bool: ...


def response(outcomes: Sequence[tuple[str, Outcome]]) -> dict[str, Any]:
    """KumoMTA's response from (email, outcome) pairs in recipient order."""
    failed = [(email, reason) for email, reason in outcomes if reason is not None]
    return {
        "success_count": len(outcomes) - len(failed),
        "fail_count": len(failed),
        "failed_recipients": [email for email, _ in failed],
        "errors": [f"{email}: {reason}" for email, reason in failed],
    }


class InjectService:
    """Generates and stores the messages of inject requests (see the module docstring)."""

    def __init__(
        self,
        *,
        acceptor: AcceptorLike,
        spool: SpoolLike,
        hostname: str,
        workers: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._acceptor = acceptor
        self._spool = spool
        self._hostname = hostname
        self._clock = clock
        self._engine = TemplateEngine()
        self._checker = AddressChecker()
        self._workers = asyncio.Semaphore(workers)
        self._batches: dict[str, asyncio.Task[None]] = {}
        self._closing = asyncio.Event()

    async def inject(self, body: Any, *, peer_address: str) -> dict[str, Any]:
        """Process one request body (decoded JSON); the KumoMTA response dict.

        Raises InjectError (400/422) for a request that cannot be processed as sent, and
        TransientError when the node refuses (shutting down, spool unavailable) or when no
        message could be stored, so that a retry never duplicates anything.
        """
        request = parse_request(body)
        plan = self._plan(request, peer_address, self._clock())
        reason = self._acceptor.unhealthy_reason()
        if reason is not None:
            raise TransientError(S451_SPOOL_UNAVAILABLE, reason)
        if request.deferred_generation:
            await self._queue_batch(body, peer_address)
            return response([])
        outcomes = await self._generate_now(plan, peer_address)
        return response(outcomes)

    def recover(self, batch_id: str, meta: dict[str, Any]) -> None:
        """Resume a batch found in the spool at startup (`recovery_handlers["inject-batch"]`)."""
        try:
            batch.check_batch_meta(meta)
        except ValueError as exc:
            logger.error("inject batch %s left in the spool: %s", batch_id, exc)
            return
        self._schedule(batch_id, meta)

    async def close(self, timeout: float, *, finish: bool = False) -> None:  # noqa: ASYNC109
        """Stop background expansions: batches being expanded get `timeout` seconds (the
        node's drain timeout) to finish, then are cancelled; batches not started yet do not
        start. What is left stays in the spool and resumes at the next start. With `finish`,
        the batches not started yet also get that time to expand (the node hands its spool to
        a peer next, which takes messages, not batches)."""
        if not finish:
            self._closing.set()
        tasks = list(self._batches.values())
        pending: set[asyncio.Task[None]] = set()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
        self._closing.set()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- immediate generation --------------------------------------------------------------

    def _plan(self, request: InjectRequest, peer_address: str, now: float) -> RequestPlan:
        return RequestPlan(
            request,
            engine=self._engine,
            checker=self._checker,
            hostname=self._hostname,
            peer_address=peer_address,
            now=now,
        )

    async def _generate_now(self, plan: RequestPlan, peer: str) -> list[tuple[str, Outcome]]:
        base = batch.new_batch_id()
        outcomes: dict[int, Outcome] = {}
        in_flight: list[asyncio.Future[dict[int, Outcome]]] = []
        try:
            for start in range(0, len(plan), CHUNK):
                indices = range(start, min(start + CHUNK, len(plan)))
                in_flight.append(asyncio.ensure_future(self._store_many(plan, base, indices, peer)))
                if len(in_flight) > 1:  # this chunk is generated while the previous is written
                    outcomes.update(await in_flight.pop(0))
            while in_flight:
                outcomes.update(await in_flight.pop(0))
        finally:
            for task in in_flight:  # only when cancelled: leave no store behind unawaited
                task.cancel()
        ordered = [(plan.email(i), outcomes[i]) for i in range(len(plan))]
        refused = [reason for _, reason in ordered if isinstance(reason, _Refused)]
        if refused and all(reason is not None for _, reason in ordered):
            # Nothing was stored: a 503 makes the client retry, which duplicates nothing.
            raise TransientError(S451_SPOOL_UNAVAILABLE, refused[0])
        return ordered

    async def _store_many(
        self, plan: RequestPlan, base: str, indices: Iterable[int], peer: str
    ) -> dict[int, Outcome]:
        """Generate recipients `indices` and store them concurrently; each one's outcome."""
        outcomes: dict[int, Outcome] = {}
        storing: list[int] = []
        stores = []
        for i in indices:
            msg_id = batch.message_id(base, i)
            generated = _generate(plan, i, msg_id)
            if isinstance(generated, str):
                outcomes[i] = generated
                continue
            storing.append(i)
            stores.append(self._store(_inbound(plan, generated, peer), msg_id))
        results = await asyncio.gather(*stores, return_exceptions=True)
        for i, result in zip(storing, results, strict=True):
            outcomes[i] = _outcome(result)
        return outcomes

    async def _store(self, inbound: Inbound, msg_id: str) -> str:
        """Store one message unless its recipient is suppressed (then a _Suppressed reason)."""
        try:
            inbound = await self._acceptor.without_suppressed(inbound)
        except RecipientSuppressed as exc:
            return _Suppressed(exc.reply.text)
        return await self._acceptor.store(inbound, msg_id)

    # -- deferred generation ---------------------------------------------------------------

    async def _queue_batch(self, body: Any, peer: str) -> None:
        batch_id = batch.new_batch_id()
        meta = batch.new_batch_meta(peer=peer, received=self._clock())
        try:
            await self._spool.store(batch_id, meta, batch.encode_request(body))
        except SpoolError as exc:
            raise TransientError(S451_SPOOL_UNAVAILABLE, str(exc)) from exc
        self._schedule(batch_id, meta)

    def _schedule(self, batch_id: str, meta: dict[str, Any]) -> None:
        if self._closing.is_set() or batch_id in self._batches:
            return  # durable: resumes at the next start
        task = asyncio.get_running_loop().create_task(
            self._run_batch(batch_id, meta), name=f"inject-batch-{batch_id}"
        )
        self._batches[batch_id] = task
        task.add_done_callback(lambda done: self._batch_done(batch_id, done))

    def _batch_done(self, batch_id: str, task: asyncio.Task[None]) -> None:
        self._batches.pop(batch_id, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "inject batch %s stopped; it resumes at the next start",
                batch_id,
                exc_info=task.exception(),
            )

    async def _run_batch(self, batch_id: str, meta: dict[str, Any]) -> None:
        async with self._workers:
            if self._closing.is_set():
                return
            plan = self._batch_plan(batch_id, meta)
            if plan is None:
                return
            for start in range(meta["next"], len(plan), CHUNK):
                end = min(start + CHUNK, len(plan))
                if not await self._expand_chunk(plan, batch_id, range(start, end), meta["peer"]):
                    return  # closing
                meta = {**meta, "next": end}
                # Only now that the chunk is durable: a crash before this line regenerates
                # the chunk, skipping the ids already in the spool.
                if not await self._retrying(functools.partial(self._spool.update, batch_id, meta)):
                    return
            await self._retrying(functools.partial(self._spool.remove, batch_id))

    def _batch_plan(self, batch_id: str, meta: dict[str, Any]) -> RequestPlan | None:
        try:
            body = batch.decode_request(self._spool.read(batch_id))
            return self._plan(parse_request(body), meta["peer"], meta["received"])
        except (InjectError, SpoolError, ValueError) as exc:
            logger.error("inject batch %s cannot be expanded, left in the spool: %s", batch_id, exc)
            return None

    async def _expand_chunk(
        self, plan: RequestPlan, batch_id: str, indices: range, peer: str
    ) -> bool:
        """Store the chunk's messages not yet in the spool, retrying refusals; False when
        closing. A retry only regenerates the refused ones: the others may have been
        delivered (and left the spool) meanwhile."""
        todo = [i for i in indices if batch.message_id(batch_id, i) not in self._spool]
        while todo:
            outcomes = await self._store_many(plan, batch_id, todo, peer)
            todo = sorted(i for i, reason in outcomes.items() if isinstance(reason, _Refused))
            for i, reason in outcomes.items():
                if reason is not None and not isinstance(reason, _Refused):
                    logger.warning("inject batch %s: %s: %s", batch_id, plan.email(i), reason)
            if todo and await self._pause():
                return False
        return True

    async def _retrying(self, write: Callable[[], Awaitable[None]]) -> bool:
        """Run a spool write until it succeeds; False when closing first."""
        while True:
            try:
                await write()
                return True
            except SpoolError as exc:
                logger.warning("inject batch: spool write failed, retrying: %s", exc)
            if await self._pause():
                return False

    async def _pause(self) -> bool:
        """Wait before a retry; True when the service is closing."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RETRY_SECONDS):
                await self._closing.wait()
        return self._closing.is_set()


def _generate(plan: RequestPlan, index: int, msg_id: str) -> Generated | str:
    """Recipient `index`'s message, or why it cannot be generated."""
    try:
        return plan.generate(index, msg_id)
    except RecipientError as exc:
        return str(exc)
    except Exception as exc:
        # A bug must not fail the other recipients: some may already be stored.
        logger.exception("inject: generating the message for recipient %d failed", index)
        return f"internal error: {type(exc).__name__}"


def _outcome(result: str | BaseException) -> Outcome:
    if isinstance(result, _Suppressed):
        return str(result)
    if isinstance(result, TransientError):
        return _Refused(result)
    if isinstance(result, BaseException):
        raise result  # a bug, not a refusal
    return None


def _inbound(plan: RequestPlan, generated: Generated, peer: str) -> Inbound:
    return Inbound(
        sender=plan.sender,
        recipients=(generated.recipient,),
        data=generated.data,
        reception_protocol=RECEPTION_PROTOCOL,
        peer_address=peer,
        peer_name="",
        smtputf8=generated.smtputf8,
        meta=generated.meta,
    )
