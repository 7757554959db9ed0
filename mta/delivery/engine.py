"""The delivery engine: sites for domains, and jobs delivered over pooled SMTP sessions."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Iterable
from typing import TYPE_CHECKING

from mta.config import DeliveryConfig, RouteConfig
from mta.egress.rules import delivery_layer
from mta.replies import S554_MAIL_LOOP
from mta.routing import Destination, Rejected
from mta.routing.destination import S250_DISCARDED, route_destination
from shaping.gate import ConnectionGrant, Refusal, Shaper
from shaping.leases import MemoryLeases
from shaping.rules import ShapingRules
from shaping.throttle import MemoryThrottle, ThrottleResult

from .client import SmtpSession
from .handoff import Handoff
from .local import OwnListeners, machine_addresses
from .mx import (
    RELAY_PREFIX,
    MxResolver,
    connection_order,
    drop_self,
    system_addresses,
)
from .paths import PathCache
from .pool import SessionPool
from .private import AddressPolicy, DestinationRefused, destination_not_allowed
from .relay import DISCARD_SITE, RouteSites
from .replies import S451_CONNECT_FAILED, S451_INTERNAL_ERROR, as_transient
from .settings import (
    HostFailure,
    SessionSettings,
    SourceUnavailable,
    StaleSession,
    Timeouts,
)
from .sts_fetch import PolicyFetcher, StsPolicies
from .tls import DISABLED, TlsContexts
from .types import Job, Outcome, PathThrottled, PeerAddress, Site, SiteError

if TYPE_CHECKING:
    from mta.egress.sources import EgressSource, EgressSources

logger = logging.getLogger(__name__)

S451_NO_HOSTS = S451_CONNECT_FAILED.with_text("No MX host left to try")
# Longest wait in a delivery for one of this node's connections to a site at its limit.
CONNECTION_WAIT = 2.0


class DeliveryEngine:
    """Delivers jobs to sites. The caller bounds the concurrency per site."""

    def __init__(
        self,
        config: DeliveryConfig,
        resolver: MxResolver,
        *,
        ehlo_name: str,
        own_addresses: Iterable[tuple[str, int]] = (),
        rules: ShapingRules | None = None,
        shaper: Shaper | None = None,
        sources: EgressSources | None = None,
    ) -> None:
        self._config = config
        self._sources = sources  # [egress] sources and pools (mta.egress.sources)
        self._resolver = resolver
        self._ehlo_name = ehlo_name
        self._listeners = tuple(own_addresses)
        self._own: OwnListeners | None = None
        self._pool: SessionPool[SmtpSession] = SessionPool(config.idle_timeout)
        self._tls_contexts = TlsContexts(config.tls_ca_file)
        self._address_policy = AddressPolicy.from_config(config.allowed_private_networks)
        fetcher = PolicyFetcher(
            self._tls_contexts, resolver, self._address_policy, config.mta_sts_port
        )
        self._sts = StsPolicies(resolver, fetcher)
        self._rng = random.Random()
        self.rules = rules or ShapingRules.load([delivery_layer(config)])
        self.shaper = shaper or Shaper(MemoryThrottle(), MemoryLeases())
        self._paths = PathCache(self.rules)
        self._routed = RouteSites(config.smtp_port)  # relay and LMTP routes (relay.py)
        self._handoff = Handoff()
        self.open_sessions = 0  # outbound connections open now, idle or busy (metrics)

    # -- sites -------------------------------------------------------------------------

    async def site_for(
        self,
        domain: str,
        route: Destination | Rejected | RouteConfig | None,
        *,
        tenant: str | None = None,
    ) -> Site:
        """The site for `domain` on its route (mta.routing; a relay or LMTP route skips the
        MX lookup and MTA-STS), from an egress source of the leg's pool (route, `tenant`,
        default; the site is then named "source->site"), with the shaping settings of its
        egress path and the domain's MTA-STS policy applied; raises SiteError (a Rejected
        route: its permanent reply), or PathThrottled when no source of the pool may be used
        now (the leg waits, unattempted)."""
        if isinstance(route, RouteConfig):
            route = route_destination(route)
        if isinstance(route, Rejected):
            raise SiteError(Outcome(route.reply, "RCPT"))
        if route is not None and route.kind == "discard":
            return Site(DISCARD_SITE, (), 0, DISABLED)
        pool, source = self._egress(route, tenant)
        if route is not None and route.kind in ("relay", "lmtp"):
            site = self._paths.shape(domain, self._routed.site(route), relay=True, source=source)
            return _from_source(await self._without_self(site), pool, source)
        site = await self._resolver.resolve_site(
            domain, port=self._config.smtp_port, tls=self._config.enable_tls
        )
        site = self._paths.shape(domain, site, relay=False, source=source)
        site = await self._sts.apply(domain, await self._without_self(site))
        return _from_source(site, pool, source)

    def _egress(
        self, route: Destination | None, tenant: str | None
    ) -> tuple[str | None, str | None]:
        """The leg's pool and the source chosen for this attempt (None, None: no pool)."""
        if self._sources is None or (route is not None and route.kind == "lmtp"):
            return None, None
        pool = self._sources.pool_for(route.pool if route is not None else None, tenant)
        if pool is None:
            return None, None
        source = self._sources.choose(pool)
        if source is None:
            wait = self._sources.retry_after(pool)
            raise PathThrottled(f"no egress source of pool {pool} is available", wait)
        return pool, source

    async def _own_listeners(self) -> OwnListeners:
        if self._own is None:
            wildcard = OwnListeners.from_listeners(self._listeners).wildcard_ports
            machine = await machine_addresses() if wildcard else frozenset[str]()
            self._own = OwnListeners.from_listeners(self._listeners, machine)
        return self._own

    async def _without_self(self, site: Site) -> Site:
        """RFC 5321 5.1: drop this node and the less preferred MX hosts; none left is a loop."""
        own = await self._own_listeners()
        if not own.listens_on(site.port):
            return site
        hosts = [host for group in site.hosts for host in group]
        found = await asyncio.gather(*(self._addresses_or_none(site, host) for host in hosts))
        addresses = dict(zip(hosts, found, strict=True))
        kept = drop_self(site.hosts, lambda h: any(own.is_own(a, site.port) for a in addresses[h]))
        if not kept:
            loop = S554_MAIL_LOOP.with_text(f"{S554_MAIL_LOOP.text} ({site.name})")
            raise SiteError(Outcome(loop, "dns"))
        return dataclasses.replace(site, hosts=kept)

    async def _addresses(self, site: Site, host: str) -> list[str]:
        """Addresses to try for `host`; raises SiteError for this host only."""
        transport = self._routed.transport(site.base_name)
        if transport is not None and transport.socket_path is not None:
            return [transport.socket_path]
        if _is_relay(site) or transport is not None:
            return await system_addresses(host, site.port, self._config.connect_timeout)
        return await self._resolver.addresses(host)

    async def _addresses_or_none(self, site: Site, host: str) -> list[str]:
        try:
            return await self._addresses(site, host)
        except SiteError:
            return []  # reported when a connection to it is attempted

    # -- delivery ----------------------------------------------------------------------

    async def deliver(self, site: Site, job: Job) -> dict[str, Outcome]:
        """Deliver `job` to `site`: an outcome for every recipient; never raises for a
        delivery problem (cancellation excepted). Raises PathThrottled when shaping allows
        no new connection now: then nothing was attempted."""
        try:
            return await self._deliver(site, job)
        except PathThrottled:
            raise
        except Exception:  # a bug must not lose recipients: retry them later
            logger.exception("delivery of %s to %s failed unexpectedly", job.msg_id, site.name)
            return dict.fromkeys(job.recipients, Outcome(S451_INTERNAL_ERROR))

    async def _deliver(self, site: Site, job: Job) -> dict[str, Outcome]:
        if not job.recipients:
            return {}
        if site.name == DISCARD_SITE:  # KumoMTA's `null` queue: logged as delivered
            return dict.fromkeys(job.recipients, Outcome(S250_DISCARDED))
        while True:
            try:
                session, pooled = await self._connection(site)
            except HostFailure as failure:
                return dict.fromkeys(job.recipients, failure.outcome)
            try:
                return self._finish(site, session, await self._transact(session, job))
            except StaleSession:
                if not pooled:
                    raise
                logger.debug("pooled session to %s was dead; opening a new one", session.peer)
                self._pool.retire(session)

    async def _connection(self, site: Site) -> tuple[SmtpSession, bool]:
        """An idle session to the site (pooled: True) or a new one under the path's leases.
        At the connection limit, waits up to CONNECTION_WAIT for one of this node's
        connections to the site to come back (handoff.py); raises PathThrottled when shaping
        refuses (nothing was attempted), HostFailure when no host of the site answers."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONNECTION_WAIT
        while True:
            session = self._pool.take(site.name)
            if session is not None:
                return session, True
            grant = await self.shaper.acquire_connection(site.name, site.path)
            if not isinstance(grant, Refusal):
                return await self._open_granted(site, grant), False
            if not (grant.at_limit and await self._handoff.wait(site.name, deadline - loop.time())):
                raise PathThrottled(grant.reason, grant.retry_after)

    async def _transact(self, session: SmtpSession, job: Job) -> dict[str, Outcome]:
        try:
            return await session.transact(job)
        except StaleSession:
            raise
        except BaseException:
            self._pool.retire(session)  # cancelled mid-transaction: close, give back leases
            raise

    async def admit(self, site: Site, messages: int = 1) -> ThrottleResult:
        """Whether `messages` may be sent on the site's path now (its message rates)."""
        return await self.shaper.check_message(site.name, site.path, messages)

    def _finish(
        self, site: Site, session: SmtpSession, outcomes: dict[str, Outcome]
    ) -> dict[str, Outcome]:
        if session.transactions < site.path.max_deliveries_per_connection:
            self._pool.put(site.name, session, site.path.idle_timeout)
            self._handoff.released(site.name)
        else:
            self._pool.retire(session)
        return outcomes

    async def _open_granted(self, site: Site, grant: ConnectionGrant) -> SmtpSession:
        """`_open` under the leases of `grant`, given back when the connection closes."""
        await grant.__aenter__()
        self._handoff.opened(site.name)  # a connection being opened comes back too
        try:
            session = await self._open(site)
        except BaseException:
            await grant.__aexit__(None, None, None)
            self._handoff.closed(site.name)
            raise
        self.open_sessions += 1
        session.on_close = lambda: self._closed(site.name, grant)
        return session

    async def _closed(self, site_name: str, grant: ConnectionGrant) -> None:
        self.open_sessions -= 1
        await grant.__aexit__(None, None, None)
        self._handoff.closed(site_name)

    def _settings(self, site: Site) -> SessionSettings:
        path = site.path
        source = self._source(site)
        # KumoMTA's order: the path's ehlo_domain, the source's, the node's name.
        ehlo = path.ehlo_domain or (source.ehlo_domain if source else None) or self._ehlo_name
        return SessionSettings(
            ehlo,
            site.port,
            site.tls,
            Timeouts.from_config(path),
            self._tls_contexts,
            path.opportunistic_tls_reconnect_on_failed_handshake,
            source_address=source.source_address if source else None,
            connector=source.connector if source else None,
        )

    def _source(self, site: Site) -> EgressSource | None:
        if site.source is None or self._sources is None:
            return None
        return self._sources.source(site.source)

    async def _open(self, site: Site) -> SmtpSession:
        """A session with the first host that works, from the site's egress source (whose
        health it reports). Raises HostFailure: transient (a host refusing to talk is not the
        recipient's fault, an unavailable source neither), except when every address of every
        host is one that delivery may not connect to (private.py): then permanent."""
        try:
            session = await self._walk(site)
        except SourceUnavailable as down:
            if site.source is not None and self._sources is not None:
                self._sources.failed(site.source, down.reason)
            reply = S451_CONNECT_FAILED.with_text(f"egress source {site.source}: {down.reason}")
            raise HostFailure(Outcome(reply, "connect")) from None
        if site.source is not None and self._sources is not None:
            self._sources.succeeded(site.source)
        return session

    async def _walk(self, site: Site) -> SmtpSession:
        settings = self._settings(site)
        walk = _Walk()
        for host in connection_order(site.hosts, self._rng):
            try:
                peers = await self._peers(site, host)
            except DestinationRefused as refusal:
                walk.refused(refusal.outcome)
                continue
            except SiteError as error:
                walk.failed(error.outcome)
                continue
            transport = self._routed.transport(site.base_name)
            for peer in peers:
                try:
                    if transport is not None:
                        host_settings = transport.settings(settings, host)
                        return await transport.session_class.open(peer, host_settings)
                    return await SmtpSession.open(peer, settings)
                except HostFailure as failure:
                    logger.info("%s: %s", site.name, failure.outcome.reply)
                    walk.failed(failure.outcome)
        raise HostFailure(walk.outcome())

    async def _peers(self, site: Site, host: str) -> list[PeerAddress]:
        """The addresses of `host` to connect to; ours are refused (a loop), and so are
        private ones unless allowed (a relay route is allowed anything)."""
        own = await self._own_listeners()
        peers = [PeerAddress(host, addr) for addr in await self._addresses(site, host)]
        looping = [peer for peer in peers if own.is_own(peer.addr, site.port)]
        if looping and len(looping) == len(peers):
            raise SiteError(Outcome(S554_MAIL_LOOP, "connect", looping[0]))
        peers = [peer for peer in peers if peer not in looping]
        if _is_relay(site) or self._routed.transport(site.base_name) is not None:
            return peers
        allowed = [peer for peer in peers if self._address_policy.permits(peer.addr)]
        if peers and not allowed:
            refused = Outcome(destination_not_allowed(peers[0]), "connect", peers[0])
            raise DestinationRefused(refused)
        return allowed

    # -- housekeeping ------------------------------------------------------------------

    def idle_connections(self, site_name: str) -> int:
        return self._pool.idle(site_name)

    def idle_sessions(self) -> int:
        """Outbound connections kept open for reuse, every site together (metrics)."""
        return self._pool.idle_total()

    async def close(self) -> None:
        """QUIT and close every pooled session; stop MTA-STS fetches."""
        await self._pool.close()
        await self._sts.close()


def _is_relay(site: Site) -> bool:
    return site.base_name.startswith(RELAY_PREFIX)


def _from_source(site: Site, pool: str | None, source: str | None) -> Site:
    """The site as seen from egress `source`: KumoMTA's ready queue name "source->site"."""
    if source is None:
        return site
    return dataclasses.replace(site, name=f"{source}->{site.name}", source=source, pool=pool)


class _Walk:
    """What trying the MX hosts in turn came to: the last failure, made transient, unless
    every host was refused for its addresses alone (a permanent refusal then)."""

    def __init__(self) -> None:
        self._last = Outcome(S451_NO_HOSTS)
        self._refusal: Outcome | None = None
        self._other = False

    def refused(self, outcome: Outcome) -> None:
        self._refusal = self._refusal or outcome

    def failed(self, outcome: Outcome) -> None:
        self._last = outcome
        self._other = True

    def outcome(self) -> Outcome:
        if self._refusal is not None and not self._other:
            return self._refusal
        return dataclasses.replace(self._last, reply=as_transient(self._last.reply))
