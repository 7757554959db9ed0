"""MX resolution: pure rules over DNS answers (RFC 5321 5.1, RFC 7505) and `MxResolver`.

The pure part turns lookups into preference groups, site names and failure replies; the
resolver runs the queries through dnspython against the configured nameservers and caches
the results for their TTL, clamped to the configured bounds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from mta.config import DnsConfig
from mta.replies import S550_NO_SUCH_DOMAIN, S556_NULL_MX, Reply
from mta.units import parse_hostport

from .cache import TtlCache
from .replies import S451_DNS_TEMPFAIL, S550_HOST_NOT_FOUND, S550_NO_MX_OR_ADDRESS
from .types import Outcome, Site, SiteError

DNS_PORT = 53
MAX_NEGATIVE_TTL = 300.0  # negative answers are cached briefly (RFC 2308 allows up to 3 h)
TEMPFAIL_TTL = 5.0  # SERVFAIL/timeouts: long enough to spare a burst, short enough to retry

Groups = tuple[tuple[str, ...], ...]
LookupStatus = Literal["ok", "nodata", "nxdomain", "tempfail"]


@dataclass(frozen=True, slots=True)
class Lookup:
    """One DNS query's result: `rdata` is empty unless `status` is "ok"; `ttl` in seconds."""

    status: LookupStatus
    rdata: tuple[Any, ...] = ()
    ttl: float = 0.0


@dataclass(frozen=True, slots=True)
class TtlBounds:
    min_ttl: float
    max_ttl: float

    def clamp(self, lookup: Lookup) -> float:
        """How long to cache a lookup: clamped TTL; negative answers briefly; failures less."""
        if lookup.status == "tempfail":
            return min(TEMPFAIL_TTL, self.min_ttl)
        upper = self.max_ttl if lookup.status == "ok" else min(self.max_ttl, MAX_NEGATIVE_TTL)
        return max(self.min_ttl, min(lookup.ttl, upper))


def normalize_host(name: str) -> str:
    """Lowercase, without the trailing dot: the spelling used in site names and caches."""
    return name.strip().rstrip(".").lower()


def mx_records(rdata: Iterable[Any]) -> list[tuple[int, str]]:
    """(preference, host) pairs from MX rdata; the root target "." becomes ""."""
    return [(int(rr.preference), normalize_host(rr.exchange.to_text())) for rr in rdata]


def is_null_mx(records: Sequence[tuple[int, str]]) -> bool:
    """RFC 7505: a null MX ("0 .") says the domain accepts no mail.

    A null MX must be the only record; if other records are published next to it, the
    usable ones win.
    """
    return bool(records) and all(host == "" for _, host in records)


def preference_groups(records: Iterable[tuple[int, str]]) -> Groups:
    """Hosts grouped by preference, lowest first; a host listed twice keeps its best
    preference; "." targets are dropped; names sorted inside a group (the shuffle happens
    at connection time)."""
    best: dict[str, int] = {}
    for preference, host in records:
        if host and preference < best.get(host, preference + 1):
            best[host] = preference
    levels = sorted(set(best.values()))
    return tuple(tuple(sorted(h for h, p in best.items() if p == level)) for level in levels)


def site_name(groups: Groups) -> str:
    """The MX rollup name: every host name, sorted, joined with "|"."""
    return "|".join(sorted({host for group in groups for host in group}))


RELAY_PREFIX = "relay:"


def relay_site_name(host: str, port: int) -> str:
    """The relay site name, e.g. "relay:10.0.0.5:2525" or "relay:[::1]:2525"."""
    if ":" in host:
        host = f"[{host}]"
    return f"{RELAY_PREFIX}{host}:{port}"


def is_relay(site: Site) -> bool:
    return site.name.startswith(RELAY_PREFIX)


def connection_order(groups: Groups, rng: random.Random | None = None) -> list[str]:
    """The hosts to try, preference groups in order, shuffled inside each group
    (RFC 5321 5.1: spread the load over equal-preference hosts)."""
    shuffle = (rng or random).shuffle
    order: list[str] = []
    for group in groups:
        hosts = list(group)
        shuffle(hosts)
        order.extend(hosts)
    return order


def drop_self(groups: Groups, is_self: Callable[[str], bool]) -> Groups:
    """RFC 5321 5.1: if this node is an MX, discard it and every less preferred MX."""
    kept: list[tuple[str, ...]] = []
    for group in groups:
        if any(is_self(host) for host in group):
            break
        kept.append(group)
    return tuple(kept)


def ip_literal(host: str) -> str | None:
    """The address in "192.0.2.1", "[192.0.2.1]" or "[IPv6:2001:db8::1]", else None."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        text = text[5:] if text.lower().startswith("ipv6:") else text
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def mx_result(lookup: Lookup) -> Groups | Reply | None:
    """The site's hosts or the reply for every recipient; None means "no MX records",
    fall back to the implicit MX (the domain itself, RFC 5321 5.1)."""
    if lookup.status == "nxdomain":
        return S550_NO_SUCH_DOMAIN
    if lookup.status == "tempfail":
        return S451_DNS_TEMPFAIL
    if lookup.status == "nodata":
        return None
    records = mx_records(lookup.rdata)
    if is_null_mx(records):
        return S556_NULL_MX
    return preference_groups(records)


def address_result(a: Lookup, aaaa: Lookup) -> tuple[str, ...] | Reply:
    """A then AAAA addresses; with none, a lookup failure is transient, else not found."""
    found = [rr.address for rr in (*a.rdata, *aaaa.rdata)]
    if found:
        return tuple(dict.fromkeys(found))
    if "tempfail" in (a.status, aaaa.status):
        return S451_DNS_TEMPFAIL
    return S550_HOST_NOT_FOUND


async def system_addresses(host: str, port: int, seconds: float) -> list[str]:
    """Addresses of a configured relay host from the system resolver (getaddrinfo), which
    knows the hosts file and the search domains ("smtp-sink" in Kubernetes) that MX
    lookups must not use. Raises SiteError (transient: a configuration or network issue)."""
    literal = ip_literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(seconds):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as error:
        reply = S451_DNS_TEMPFAIL.with_text(f"cannot resolve relay host {host}: {error}")
        raise SiteError(Outcome(reply, "dns")) from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _nameserver(text: str) -> dns.nameserver.Do53Nameserver:
    host, port = parse_hostport(text, default_port=DNS_PORT)
    return dns.nameserver.Do53Nameserver(host, port)


def _negative_ttl(error: dns.resolver.NXDOMAIN) -> float:
    responses = error.responses()  # type: ignore[no-untyped-call]  # untyped in dnspython
    for response in responses.values():
        try:
            return float(response.resolve_chaining().minimum_ttl)
        except dns.exception.DNSException:
            continue
    return 0.0


class MxResolver:
    """Resolves domains to sites and hosts to addresses, caching by (clamped) TTL."""

    def __init__(self, config: DnsConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._resolver = dns.asyncresolver.Resolver(configure=not config.nameservers)
        if config.nameservers:
            self._resolver.nameservers = [_nameserver(text) for text in config.nameservers]
        self._resolver.timeout = config.timeout
        self._resolver.lifetime = config.timeout
        self._timeout = config.timeout
        self._bounds = TtlBounds(config.min_ttl, config.max_ttl)
        self._sites: TtlCache[Groups | Reply] = TtlCache(clock=clock)
        self._hosts: TtlCache[tuple[str, ...] | Reply] = TtlCache(clock=clock)
        self._txt: TtlCache[Lookup] = TtlCache(clock=clock)

    async def resolve_site(self, domain: str, *, port: int, tls: str) -> Site:
        """The site for `domain`; raises SiteError for null MX, NXDOMAIN or DNS failure."""
        literal = ip_literal(domain)
        if literal is not None:
            return Site(literal, ((literal,),), port, tls)
        key = normalize_host(domain)
        found = self._sites.get(key)
        if found is None:
            found, ttl = await self._lookup_site(key)
            self._sites.put(key, found, ttl)
        if isinstance(found, Reply):
            raise SiteError(Outcome(_about(found, key), "dns"))
        return Site(site_name(found), found, port, tls)

    async def addresses(self, host: str) -> list[str]:
        """A then AAAA addresses of `host`; raises SiteError if it has none."""
        literal = ip_literal(host)
        if literal is not None:
            return [literal]
        key = normalize_host(host)
        found = self._hosts.get(key)
        if found is None:
            found, ttl = await self._lookup_host(key)
            self._hosts.put(key, found, ttl)
        if isinstance(found, Reply):
            raise SiteError(Outcome(_about(found, key), "dns"))
        return list(found)

    async def txt(self, name: str) -> Lookup:
        """The TXT records of `name` (such as "_mta-sts.example.com"), cached like the rest."""
        key = normalize_host(name)
        found = self._txt.get(key)
        if found is None:
            found = await self._query(key, "TXT")
            self._txt.put(key, found, self._bounds.clamp(found))
        return found

    async def _lookup_site(self, domain: str) -> tuple[Groups | Reply, float]:
        lookup = await self._query(domain, "MX")
        result = mx_result(lookup)
        ttl = self._bounds.clamp(lookup)
        if result is not None:
            return result, ttl
        hosts = self._hosts.get(domain)
        if hosts is None:
            hosts, host_ttl = await self._lookup_host(domain)
            self._hosts.put(domain, hosts, host_ttl)
            ttl = min(ttl, host_ttl)
        if hosts == S550_HOST_NOT_FOUND:
            return S550_NO_MX_OR_ADDRESS, ttl
        if isinstance(hosts, Reply):
            return hosts, ttl
        return ((domain,),), ttl

    async def _lookup_host(self, host: str) -> tuple[tuple[str, ...] | Reply, float]:
        a, aaaa = await asyncio.gather(self._query(host, "A"), self._query(host, "AAAA"))
        result = address_result(a, aaaa)
        ttls = [self._bounds.clamp(lookup) for lookup in (a, aaaa)]
        if not isinstance(result, Reply):  # a failed AAAA must not hide good A records long
            ttls = [self._bounds.clamp(lookup) for lookup in (a, aaaa) if lookup.rdata]
        return result, min(ttls)

    async def _query(self, name: str, rdtype: str) -> Lookup:
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException:
            return Lookup("nxdomain")  # not a valid domain name: it cannot exist
        try:
            async with asyncio.timeout(self._timeout):
                answer = await self._resolver.resolve(qname, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as error:
            return Lookup("nxdomain", (), _negative_ttl(error))
        except (TimeoutError, dns.exception.DNSException):
            _reraise_lost_cancel()
            return Lookup("tempfail")
        _reraise_lost_cancel()
        ttl = float(answer.chaining_result.minimum_ttl)
        if answer.rrset is None:
            return Lookup("nodata", (), ttl)
        return Lookup("ok", tuple(answer.rrset), ttl)


def _reraise_lost_cancel() -> None:
    # Python 3.11's asyncio.wait_for (used inside dnspython) can swallow a cancellation that
    # arrives together with the answer; the task still counts it, so honour it here.
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _about(reply: Reply, name: str) -> Reply:
    """The cached reply with the name it concerns in its text."""
    return reply.with_text(f"{reply.text}: {name}")
