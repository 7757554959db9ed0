"""The queue manager: from an accepted message to a per-recipient outcome.

Entries are `(message id, recipient domain)` pairs ("legs"). A leg waits in its scheduled queue
until due, is bound to the ready queue of its destination site (MX rollup), is attempted by a
worker of that site, and the per-recipient outcomes decide what happens next: delivered and
bounced recipients leave the leg, transient ones keep it for a later attempt, past `max_age` it
expires. Bounces and expiries produce one DSN per attempt to the envelope sender.

An administrator's rules (`mta.queue.admin`) are consulted through `AdminGate` where a leg
changes hands: when it is promoted, when a worker takes it, and before a retry is scheduled.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from mta.config import Config
from mta.delivery import DeliveryEngine, Job, Outcome, PathThrottled, Site, SiteError
from mta.dsn import FailedRecipient
from mta.queue.events import OutcomeLog
from mta.queue.gcfreeze import GrowthFreezer
from mta.queue.meta import Meta, MetaError, check_meta
from mta.queue.notify import DsnSender, DsnSubmitter
from mta.queue.ports import AdminGate, Key, RecoveredLike, RecoveryHandler, SpoolLike
from mta.queue.queued import QueuedLeg, QueuedMessage
from mta.queue.rates import QueueRates
from mta.queue.ready import ReadyQueue
from mta.queue.requeue import requeue
from mta.queue.retry import is_expired, retry_delay
from mta.queue.state import QueueState
from mta.replies import S451_LOCAL_ERROR, S551_MESSAGE_EXPIRED, Reply
from mta.routing import Router
from mta.routing.router import leg_domain

logger = logging.getLogger(__name__)

PROMOTERS = 8  # concurrent site resolutions; DNS answers are cached, so few are needed
# Longest wait for a message rate inside a worker; longer waits go back to the scheduled queue.
MAX_THROTTLE_WAIT = 2.0
S451_PATH_THROTTLED = Reply(451, "4.4.5", "egress path throttled")


class QueueManager(QueueState):
    """Owns every queued leg of every message in the spool."""

    def __init__(
        self,
        config: Config,
        *,
        spool: SpoolLike,
        engine: DeliveryEngine,
        log: OutcomeLog,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(config, spool, clock)
        self.router = Router(config.routes)  # also asked at acceptance (RCPT, leg keys)
        self.queue_rates: QueueRates | None = None  # [[queue.rates]], on the node's throttle
        self._freezer = GrowthFreezer()
        self._engine = engine
        self._log = log
        self._rng = rng or random.Random()
        self._sites: dict[str, Site] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._requeue_task: asyncio.Task[int] | None = None
        self._dsn = DsnSender(config.node.hostname, spool.read)
        self._admin: AdminGate | None = None
        self.recovery_handlers: dict[str, RecoveryHandler] = {}
        # Metrics: `on_throttle_wait(reason, seconds)` for each wait shaping imposes on a leg,
        # and the legs waiting inside a worker for a message rate now.
        self.on_throttle_wait: Callable[[str, float], None] | None = None
        self.throttle_waiting = 0

    def set_dsn_submitter(self, submit: DsnSubmitter) -> None:
        """`submit(recipient, message)` stores a DSN from the null sender like any message."""
        self._dsn.submit = submit

    def set_admin(self, admin: AdminGate) -> None:
        """Consult `admin` on every leg's way (see `AdminGate`)."""
        self._admin = admin

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, recovered: Iterable[RecoveredLike] = ()) -> None:
        """Start the timer and the promoters, then re-queue `recovered` in the background.

        The re-queueing hands the event loop back every few milliseconds; messages inserted
        meanwhile are queued and delivered as usual. `wait_recovered` waits for its end.
        """
        self._tasks.append(asyncio.create_task(self._scheduler.run(), name="scheduler"))
        for i in range(PROMOTERS):
            self._tasks.append(asyncio.create_task(self._promoter(), name=f"promoter-{i}"))
        self._requeue_task = asyncio.create_task(requeue(recovered, self._recover), name="requeue")
        self._tasks.append(self._requeue_task)

    async def wait_recovered(self) -> None:
        """Return once every message recovered at start is queued again (or never will be:
        the queue was shut down first)."""
        if self._requeue_task is not None:
            await asyncio.wait([self._requeue_task])

    @property
    def recovering(self) -> bool:
        """True while recovered messages are still being queued again."""
        return self._requeue_task is not None and not self._requeue_task.done()

    async def shutdown(self, drain_timeout: float) -> None:
        """Stop binding new work, let attempts in flight finish up to the timeout, cancel the rest.

        Entries not attempted stay in the spool untouched and are re-queued at the next start.
        """
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for ready in self._ready.values():
            ready.closing = True
        try:
            async with asyncio.timeout(drain_timeout):
                for ready in list(self._ready.values()):
                    await ready.wait_idle()
        except TimeoutError:
            logger.warning("drain timeout after %.1fs: cancelling deliveries", drain_timeout)
            for ready in self._ready.values():
                ready.cancel()
            for ready in self._ready.values():
                await ready.wait_idle()

    # -- intake ----------------------------------------------------------------------------

    def insert(self, msg_id: str, meta: Meta) -> None:
        """Queue a message that the spool has durably stored."""
        message = QueuedMessage(meta)
        self._messages[msg_id] = message
        self._freezer.grown_to(len(self._messages))
        now = self._clock()
        for leg in message.legs():
            if leg.due <= now:
                self._on_due((msg_id, leg.domain))
            else:
                self._scheduler.schedule((msg_id, leg.domain), leg.due, leg.queue)

    async def _recover(self, msg_id: str, meta: dict[str, Any]) -> None:
        handler = self.recovery_handlers.get(meta.get("kind", ""))
        if handler is not None:
            # Not a message: work another component stored durably (a deferred inject batch).
            handler(msg_id, meta)
            return
        try:
            check_meta(meta)
        except MetaError as exc:
            logger.error("message %s left in the spool: %s", msg_id, exc)
            return
        message = QueuedMessage(meta)
        self._messages[msg_id] = message
        self._freezer.grown_to(len(self._messages))
        now = self._clock()
        expired = is_expired(self._config.queue, message.created, now)
        for leg in message.legs():
            if expired:
                await self._expire_now(msg_id, leg.domain)
            elif leg.due <= now:
                self._on_due((msg_id, leg.domain))
            else:
                self._scheduler.schedule((msg_id, leg.domain), leg.due, leg.queue)

    # -- scheduled -> ready ----------------------------------------------------------------

    async def _promoter(self) -> None:
        task = asyncio.current_task()
        while task is None or not task.cancelling():  # a cancel swallowed below still ends us
            while not self._due:
                self._due_event.clear()
                await self._due_event.wait()
            await self._promote(self._due.popleft())

    async def _promote(self, key: Key) -> None:
        if self._leg(key) is None:
            return  # bounced by an administrator while it was due
        self._handling[key] = None
        try:
            if self._admin is None or not await self._admin.take(key):
                await self._bind(key)
        finally:
            del self._handling[key]

    async def _bind(self, key: Key) -> None:
        domain = leg_domain(key[1])  # a leg routed by address is "domain!routing-key"
        rcpt, tenant = self._get_leg(key).rcpts[0], self._messages[key[0]].tenant
        if self.queue_rates is not None and await self._over_queue_rate(key, domain):
            return
        route = self.router.decide(rcpt, domain, tenant)  # a leg's recipients route alike
        try:
            site = await self._engine.site_for(domain, route, tenant=tenant)
        except SiteError as exc:
            await self._settle(key, None, self._all_recipients(key, exc.outcome))
            return
        except PathThrottled as wait:  # no egress source of its pool now: wait, unattempted
            await self._put_off(key, wait.retry_after, wait.reason)
            return
        if not self._ready_queue(site).put(key):
            self._overflow.add(site.name, key)

    async def _over_queue_rate(self, key: Key, domain: str) -> bool:
        """A scheduled queue over its `[[queue.rates]]` rate keeps the leg, unattempted."""
        assert self.queue_rates is not None
        message, queue = self._messages[key[0]], self._get_leg(key).queue
        wait = await self.queue_rates.delay(queue, domain, message.tenant, message.campaign)
        if wait > 0:
            await self._delay(key, wait, "queue_rate", "scheduled queue rate")
        return wait > 0

    def _ready_queue(self, site: Site) -> ReadyQueue[Key]:
        known = self._sites.get(site.name)
        self._sites[site.name] = site
        ready = self._ready.get(site.name)
        if ready is None:
            ready = ReadyQueue(
                site.name,
                max_ready=site.path.max_ready,
                max_workers=site.path.connection_limit,
                attempt=lambda key: self._attempt(site.name, key),
                on_room=lambda put: self._overflow.refill(site.name, put),
            )
            self._ready[site.name] = ready
            if self._admin is not None and self._admin.ready_suspended(site.name):
                ready.suspended = True
        elif known is None or known.path is not site.path:
            ready.configure(max_ready=site.path.max_ready, max_workers=site.path.connection_limit)
        return ready

    # -- attempts --------------------------------------------------------------------------

    async def _attempt(self, site_name: str, key: Key) -> None:
        if self._leg(key) is None:
            return  # bounced by an administrator while it waited in the ready queue
        self._handling[key] = site_name
        try:
            if self._admin is None or not await self._admin.take(key):
                await self._deliver(site_name, key)
        finally:
            del self._handling[key]

    async def _deliver(self, site_name: str, key: Key) -> None:
        msg_id = key[0]
        sender = self._messages[msg_id].sender
        site = self._sites[site_name]
        rcpts = list(self._get_leg(key).rcpts)
        batch = site.path.max_recipients_per_batch
        if not await self._admit(site, key, -(-len(rcpts) // batch)):
            return
        try:
            data = self._spool.read(msg_id)
        except Exception:
            logger.exception("cannot read message %s from the spool", msg_id)
            outcome = Outcome(S451_LOCAL_ERROR.with_text("cannot read message from the spool"))
            await self._settle(key, site, self._all_recipients(key, outcome))
            return
        outcomes: dict[str, Outcome] = {}
        for start in range(0, len(rcpts), batch):
            job = Job(msg_id, sender, tuple(rcpts[start : start + batch]), data)
            try:
                outcomes.update(await self._engine.deliver(site, job))
            except PathThrottled as throttled:
                if not outcomes:  # nothing attempted: not an attempt, back in line later
                    await self._delay(key, throttled.retry_after, "connection", throttled.reason)
                    return
                refused = Outcome(S451_PATH_THROTTLED.with_text(throttled.reason))
                outcomes.update(dict.fromkeys(rcpts[start:], refused))
                break
        await self._settle(key, site, outcomes)

    async def _admit(self, site: Site, key: Key, messages: int) -> bool:
        """Pass the path's message rates: wait here when the wait is short (a connection may
        be held meanwhile), else put the leg back in its scheduled queue, unattempted."""
        waited = 0.0
        while True:
            result = await self._engine.admit(site, messages)
            if not result.throttled:
                if waited and self.on_throttle_wait is not None:
                    self.on_throttle_wait("message_rate", waited)
                return True
            if waited + result.retry_after > MAX_THROTTLE_WAIT:
                await self._delay(key, result.retry_after, "message_rate", "message rate")
                return False
            self.throttle_waiting += 1
            try:
                await asyncio.sleep(result.retry_after)
            finally:
                self.throttle_waiting -= 1
            waited += result.retry_after

    async def _delay(self, key: Key, seconds: float, reason: str, why: str) -> None:
        """Due again in `seconds`, without counting an attempt (shaping said not now)."""
        if self.on_throttle_wait is not None:
            self.on_throttle_wait(reason, seconds)
        await self._put_off(key, seconds, why)

    async def _put_off(self, key: Key, seconds: float, why: str) -> None:
        """Back in its scheduled queue for `seconds`, unattempted; expired now instead when
        that is past the message's `max_age` (a leg that shaping or a down egress pool keeps
        from every attempt must still expire, with `why` as its last error if it has none)."""
        due = self._clock() + seconds
        leg = self._get_leg(key)
        if not is_expired(self._config.queue, self._messages[key[0]].created, due):
            self._scheduler.schedule(key, due, leg.queue)
            return
        if leg.last_reply is None:
            leg.set_last_reply(str(S451_PATH_THROTTLED.with_text(why)))
        await self._expire_now(*key)

    def _all_recipients(self, key: Key, outcome: Outcome) -> dict[str, Outcome]:
        return dict.fromkeys(self._get_leg(key).rcpts, outcome)

    async def _settle(self, key: Key, site: Site | None, outcomes: dict[str, Outcome]) -> None:
        """Apply one attempt's per-recipient outcomes to the leg and persist the result."""
        msg_id = key[0]
        meta = self._messages[msg_id]
        leg = self._get_leg(key)
        site_name = site.name if site else ""
        pool, source = (site.pool, site.source) if site else (None, None)
        provider = site.path.provider_name if site else None
        failed: list[FailedRecipient] = []
        for rcpt, outcome in outcomes.items():
            self._log.outcome(
                msg_id,
                meta,
                leg,
                rcpt,
                outcome,
                site_name,
                egress_pool=pool,
                egress_source=source,
                provider=provider,
            )
            if outcome.kind == "permanent":
                failed.append(_failed(rcpt, outcome, self._clock()))
        leg.rcpts = tuple(
            r for r in leg.rcpts if r not in outcomes or outcomes[r].kind == "transient"
        )
        due = None
        if leg.rcpts:
            due = self._next_due(meta, leg, outcomes)
            if due is None:
                failed.extend(self._expire_leg(msg_id, meta, leg, site_name))
        await self._finish(key, failed, due)

    def _next_due(
        self, meta: QueuedMessage, leg: QueuedLeg, outcomes: dict[str, Outcome]
    ) -> float | None:
        leg.attempts += 1
        transient = [o for o in outcomes.values() if o.kind == "transient"]
        if transient:
            leg.set_last_reply(str(transient[-1].reply))
        due = self._clock() + retry_delay(self._config.queue, leg.attempts, self._rng)
        if is_expired(self._config.queue, meta.created, due):
            return None
        return due

    def _expire_leg(
        self, msg_id: str, meta: QueuedMessage, leg: QueuedLeg, site_name: str
    ) -> list[FailedRecipient]:
        last = leg.last_reply or "no attempt was made"
        reply = S551_MESSAGE_EXPIRED.with_text(
            f"Delivery time expired after {leg.attempts} attempts; last error: {last}"
        )
        expired = []
        for rcpt in leg.rcpts:
            self._log.expiration(msg_id, meta, leg, rcpt, reply, site_name)
            expired.append(FailedRecipient(rcpt, reply, last_attempt=self._clock()))
        leg.rcpts = ()
        return expired

    async def _expire_now(self, msg_id: str, domain: str) -> None:
        meta = self._messages[msg_id]
        failed = self._expire_leg(msg_id, meta, self._get_leg((msg_id, domain)), "")
        await self._finish((msg_id, domain), failed, None)

    async def _finish(self, key: Key, failed: list[FailedRecipient], due: float | None) -> None:
        msg_id, domain = key
        meta = self._messages[msg_id]
        leg = self._get_leg(key)
        if not leg.rcpts:
            meta.drop_leg(domain)
            due = None
        elif due is not None:
            leg.due = due
        if failed and meta.sender:
            await self._dsn.send(msg_id, meta, failed)
        await self._store(msg_id, meta)
        # Like KumoMTA, a leg that comes back for a retry while a bounce rule matches it is
        # bounced then (so is a leg in flight when the rule was made). Checked after the last
        # await: an admin sweep skips legs being handled, so none slips into the scheduler.
        if due is not None and (self._admin is None or not await self._admin.take_requeued(key)):
            self._scheduler.schedule(key, due, leg.queue)


def _failed(rcpt: str, outcome: Outcome, when: float) -> FailedRecipient:
    remote = outcome.peer.name if outcome.peer else None
    return FailedRecipient(rcpt, outcome.reply, remote_mta=remote, last_attempt=when)
