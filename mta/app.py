"""The composition root: builds every component from the config and runs them in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from aiohttp import web

from mta.accept import Acceptor
from mta.bounce import load_classifier
from mta.config import Config
from mta.delivery import DeliveryEngine, MxResolver
from mta.dkim import build_signer
from mta.drain import AcceptedIds, HandoverReceiver
from mta.drain.accepted import FILE_NAME as ACCEPTED_IDS_FILE
from mta.drain.live import LiveDrain
from mta.egress.metrics import EgressCollector
from mta.egress.node import Egress
from mta.http import HttpServer, NodeHealth
from mta.http.admin_routes import ADMIN_OPENAPI_PATHS, add_admin_routes
from mta.http.drain_route import drain_routes, max_handover_bytes
from mta.inbound import Inbound
from mta.inject import InjectService
from mta.log_metrics import RecordLogCollector
from mta.log_segments import SegmentPolicy
from mta.logs import RecordLog
from mta.metrics import Metrics
from mta.metrics_node import NodeCollector, node_sources
from mta.queue.admin import QueueAdmin
from mta.queue.events import QueueEvents
from mta.queue.manager import QueueManager
from mta.queue.ports import RecoveredLike
from mta.smtp import SmtpServer
from mta.suppression import Suppression, build_suppression
from mta.suppression.metrics import SuppressionCollector
from mta.suppression.openapi import SUPPRESSION_OPENAPI_PATHS
from mta.suppression.routes import add_suppression_routes
from mta.units import parse_hostport
from mta.webhooks import WebhookCollector, Webhooks
from spool import Spool

logger = logging.getLogger(__name__)

DSN_PROTOCOL = "Internal"


@dataclass(frozen=True)
class HttpApi:
    """The HTTP side of a node: the server and what it serves."""

    server: HttpServer
    health: NodeHealth
    metrics: Metrics
    inject: InjectService
    admin: QueueAdmin
    handover: HandoverReceiver  # POST /api/internal/accept/v1 (a draining peer's mail)


def build_http_api(
    config: Config,
    *,
    spool: Spool,
    queue: QueueManager,
    acceptor: Acceptor,
    records: RecordLog,
    suppression: Suppression | None = None,
) -> HttpApi:
    """Health, metrics, inject and admin over the node's parts, served by one HttpServer."""
    health = NodeHealth(acceptor.unhealthy_reason)
    metrics = Metrics(queue_stats=queue.stats, spool_stats=spool.stats)
    records.add_listener(metrics.observe)
    inject = InjectService(
        acceptor=acceptor,
        spool=spool,
        hostname=config.node.hostname,
        workers=config.http.deferred_generation_workers,
    )
    queue.recovery_handlers["inject-batch"] = inject.recover  # batches stored before a restart
    admin = QueueAdmin(queue, records)
    server = HttpServer(
        config.http,
        inject=inject,
        health=health,
        metrics=metrics,
        admin_setup=lambda app: _admin_routes(app, admin, suppression),
        admin_openapi=ADMIN_OPENAPI_PATHS | (SUPPRESSION_OPENAPI_PATHS if suppression else {}),
    )
    handover = HandoverReceiver(
        spool=spool,
        queue=queue,
        records=records,
        accepted=AcceptedIds(config.spool.path / ACCEPTED_IDS_FILE, fsync=config.spool.fsync),
        unhealthy_reason=acceptor.unhealthy_reason,
    )
    limit = max_handover_bytes(config.smtp.max_message_bytes)
    server.app.add_routes(drain_routes(handover, max_body_bytes=limit))
    return HttpApi(server, health, metrics, inject, admin, handover)


def _admin_routes(app: web.Application, admin: QueueAdmin, suppression: Suppression | None) -> None:
    add_admin_routes(app, admin)
    if suppression is not None:
        add_suppression_routes(app, suppression)


class Node:
    """One MTA node: one spool, one queue manager, the SMTP listeners, the HTTP API."""

    def __init__(self, config: Config, *, records_stream: TextIO | None = None) -> None:
        self.config = config
        self.records = RecordLog(
            nodeid=config.node.name,
            stdout=config.log.stdout,
            path=config.log.path,
            stream=records_stream,
            segments=SegmentPolicy(
                config.log.segment_max_bytes, config.log.segment_max_age, config.log.retention
            ),
        )
        # Secret files are read now: a missing one stops the start.
        self.webhooks = Webhooks(config.webhooks, config.spool.path)
        self.records.add_listener(self.webhooks.observe)
        self.spool = Spool(
            config.spool.path, min_free_bytes=config.spool.min_free_bytes, fsync=config.spool.fsync
        )
        listen = [parse_hostport(address) for address in config.smtp.listen]
        self.egress = Egress(config)  # shaping files are read now: a bad one stops the start
        classifier = load_classifier(config.bounce.rules_files)  # a bad rules file stops it too
        self.suppression = build_suppression(
            config.suppression,
            spool_path=config.spool.path,
            redis=config.redis,
            redis_client=self.egress.limits.client,  # shared by the cluster when configured
        )
        self.records.add_listener(self.suppression.observe)
        self.engine = DeliveryEngine(
            config.delivery,
            MxResolver(config.dns),
            ehlo_name=config.node.hostname,
            own_addresses=listen,
            rules=self.egress.rules.live,
            shaper=self.egress.limits.shaper,
            sources=self.egress.sources,
        )
        self.queue = QueueManager(
            config, spool=self.spool, engine=self.engine, log=QueueEvents(self.records, classifier)
        )
        self.queue.queue_rates = self.egress.queue_rates()
        self.signer = build_signer(config.dkim)  # keys loaded now: a bad one stops the start
        self.acceptor = Acceptor(
            spool=self.spool,
            queue=self.queue,
            records=self.records,
            default_domain=config.node.hostname,
            signer=self.signer,
            log_headers=config.log.headers,
            suppression=self.suppression,
        )
        self.queue.set_dsn_submitter(self._submit_dsn)
        self.smtp = SmtpServer(
            config.smtp, hostname=config.node.hostname, accept=self.acceptor, events=self.records
        )
        self.api = build_http_api(
            config,
            spool=self.spool,
            queue=self.queue,
            acceptor=self.acceptor,
            records=self.records,
            suppression=self.suppression,
        )
        self.api.metrics.registry.register(EgressCollector(self.egress))
        self.api.metrics.registry.register(RecordLogCollector(self.records))
        self.api.metrics.registry.register(WebhookCollector(self.webhooks.stats))
        self.api.metrics.registry.register(SuppressionCollector(self.suppression))
        self.api.metrics.registry.register(NodeCollector(node_sources(self)))
        self.acceptor.on_stored = self.api.metrics.observe_accept
        self.queue.on_throttle_wait = self.api.metrics.observe_throttle_wait
        # [node] drain_to: hand what is queued to a peer at SIGTERM (credentials read now).
        self.drain_out = LiveDrain(config.node) if config.node.drain_to else None
        self._recovered: Iterable[RecoveredLike] = ()
        self.ready = asyncio.Event()

    async def start(self) -> None:
        """Start in a written order: records, HTTP (probes answer "waiting for spool startup"
        during recovery), spool and queues, SMTP; then ready. The messages the spool recovered
        are queued again in the background (`queue.wait_recovered()`): SMTP and HTTP inject
        take mail meanwhile."""
        await self.records.start()
        await self.api.server.start()
        try:
            recovered = await self.spool.open()
            logger.info("spool %s: %d messages recovered", self.config.spool.path, len(recovered))
            await self.api.handover.start()
            if self.drain_out is not None:  # those not queued again yet are drained too
                self._recovered = recovered
            await self.webhooks.start()
            await self.suppression.start()  # before the queues: recovered mail may bounce
            await self.egress.start(self.api.admin, self.records)
            await self.queue.start(recovered)
            await self.smtp.start()
        except BaseException:
            await self.api.server.stop()
            raise
        self.api.health.mark_ready()
        self.ready.set()
        logger.info("ready: SMTP on %s", ", ".join(f"{h}:{p}" for h, p in self.smtp.addresses))

    async def stop(self) -> None:
        """Stop in a written order: not ready, SMTP listeners and sessions (421), HTTP inject,
        deliveries (drain), spool, and the HTTP server last so probes answer during the drain."""
        self.ready.clear()
        self.api.health.mark_stopping()  # readyz and inject answer 503 "shutting down"
        await self.smtp.stop_listening()
        # Sessions in the middle of DATA may still finish their message (within the drain
        # timeout), as may inject requests already past the door; only then does the accept
        # path refuse.
        drain = self.config.node.drain_timeout
        await self.smtp.close_sessions(grace=drain)
        await self.api.server.wait_for_injects(drain)
        # Deferred inject batches stop (the rest resume at the next start), or, when the spool
        # is handed to a peer next, expand whole first: the peer takes messages, not batches.
        handing_over = self.drain_out is not None and not self.drain_out.is_self
        await self.api.inject.close(drain, finish=handing_over)
        self.acceptor.refusing = "shutting down"
        await self.queue.shutdown(drain)
        if self.drain_out is not None:
            await self.drain_out.run(self.spool, list(self.queue.messages), self._recovered)
        await self.engine.close()
        await self.suppression.close()  # the last bounces' entries; before Redis closes
        await self.egress.close()
        await self.webhooks.close()  # after the last outcome record; unsent stays on disk
        await self.spool.close()
        if self.signer is not None:
            self.signer.close()
        await self.api.server.stop()
        await self.records.close()
        logger.info("stopped")

    async def run(self, shutdown: asyncio.Event) -> None:
        """Start, serve until `shutdown` is set, then stop."""
        await self.start()
        try:
            await shutdown.wait()
        finally:
            await self.stop()

    async def _submit_dsn(self, recipient: str, message: bytes) -> object:
        inbound = Inbound(
            sender="",
            recipients=(recipient,),
            data=message,
            reception_protocol=DSN_PROTOCOL,
            peer_address="127.0.0.1",
            peer_name=self.config.node.hostname,
            smtputf8=False,
        )
        return await self.acceptor.store(inbound)
