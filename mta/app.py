"""The composition root: builds every component from the config and runs them in order."""

from __future__ import annotations

import asyncio
import logging
from typing import TextIO

from mta.accept import Acceptor
from mta.config import Config
from mta.delivery import DeliveryEngine, MxResolver
from mta.inbound import Inbound
from mta.logs import RecordLog
from mta.queue.events import QueueEvents
from mta.queue.manager import QueueManager
from mta.smtp import SmtpServer
from mta.units import parse_hostport
from spool import Spool

logger = logging.getLogger(__name__)

DSN_PROTOCOL = "Internal"


class Node:
    """One MTA node: one spool, one queue manager, the SMTP listeners."""

    def __init__(self, config: Config, *, records_stream: TextIO | None = None) -> None:
        self.config = config
        self.records = RecordLog(
            nodeid=config.node.name,
            stdout=config.log.stdout,
            path=config.log.path,
            stream=records_stream,
        )
        self.spool = Spool(
            config.spool.path, min_free_bytes=config.spool.min_free_bytes, fsync=config.spool.fsync
        )
        listen = [parse_hostport(address) for address in config.smtp.listen]
        self.engine = DeliveryEngine(
            config.delivery,
            MxResolver(config.dns),
            ehlo_name=config.node.hostname,
            own_addresses=listen,
        )
        self.queue = QueueManager(
            config, spool=self.spool, engine=self.engine, log=QueueEvents(self.records)
        )
        self.acceptor = Acceptor(
            spool=self.spool,
            queue=self.queue,
            records=self.records,
            default_domain=config.node.hostname,
        )
        self.queue.set_dsn_submitter(self._submit_dsn)
        self.smtp = SmtpServer(
            config.smtp, hostname=config.node.hostname, accept=self.acceptor, events=self.records
        )
        self.ready = asyncio.Event()

    async def start(self) -> None:
        await self.records.start()
        recovered = await self.spool.open()
        logger.info("spool %s: %d messages recovered", self.config.spool.path, len(recovered))
        await self.queue.start(recovered)
        await self.smtp.start()
        self.ready.set()
        logger.info("ready: SMTP on %s", ", ".join(f"{h}:{p}" for h, p in self.smtp.addresses))

    async def stop(self) -> None:
        """Stop in a written order: listeners, sessions (421), deliveries (drain), spool."""
        self.ready.clear()
        await self.smtp.stop_listening()
        # Sessions in the middle of DATA may still finish their message (within the drain
        # timeout); only then does the accept path refuse.
        await self.smtp.close_sessions(grace=self.config.node.drain_timeout)
        self.acceptor.refusing = "shutting down"
        await self.queue.shutdown(self.config.node.drain_timeout)
        await self.engine.close()
        await self.spool.close()
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
