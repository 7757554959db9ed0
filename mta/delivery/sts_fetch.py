"""MTA-STS policies (RFC 8461): discovered through `_mta-sts.<domain>` TXT, fetched over
HTTPS from `mta-sts.<domain>`, cached by policy id until `max_age`, applied to sites.

The policy host is resolved through the delivery resolver (the `[dns]` nameservers) and is
subject to the same private-address rule as MX hosts: a policy URL must not become a way
to make this node fetch from its own network.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from mta.replies import Reply

from .cache import TtlCache
from .mx import MxResolver, ip_literal
from .private import AddressPolicy
from .sts import PolicyError, StsPolicy, enforced_site, parse_policy, parse_txt, unmatched_hosts
from .tls import TlsContexts
from .types import Outcome, Site, SiteError

logger = logging.getLogger(__name__)

HTTPS_PORT = 443
WELL_KNOWN_PATH = "/.well-known/mta-sts.txt"  # RFC 8461 3.3
# RFC 8461 3.3 lets senders bound the fetch in time and size; a policy is a few lines.
FETCH_TIMEOUT = 10.0
MAX_POLICY_BYTES = 64 * 1024
# RFC 8461 3.3: after a failed fetch, wait five minutes or more before trying the same id.
RETRY_AFTER_FAILURE = 300.0
TESTING_WARNING_INTERVAL = 3600.0  # a `testing` mismatch is logged at most hourly per domain


class FetchError(Exception):
    """The policy could not be fetched or parsed: treated as no new policy."""


def policy_url(domain: str, port: int = HTTPS_PORT) -> str:
    host = f"mta-sts.{domain}"
    return f"https://{host}{'' if port == HTTPS_PORT else f':{port}'}{WELL_KNOWN_PATH}"


class _PolicyHostResolver(AbstractResolver):
    """aiohttp's name lookups through the delivery resolver, private ranges refused."""

    def __init__(self, resolver: MxResolver, addresses: AddressPolicy) -> None:
        self._resolver = resolver
        self._addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            found = await self._resolver.addresses(host)
        except SiteError as error:
            raise OSError(f"cannot resolve {host}: {error.reply}") from None
        allowed = [addr for addr in found if self._addresses.permits(addr)]
        if not allowed:
            raise OSError(f"{host} resolves only to private or local addresses")
        return [_result(host, addr, port) for addr in allowed]

    async def close(self) -> None:
        return None


def _result(host: str, addr: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    return ResolveResult(
        hostname=host, host=addr, port=port, family=family, proto=0, flags=socket.AI_NUMERICHOST
    )


class PolicyFetcher:
    """HTTPS GET of a domain's policy: verified certificate for `mta-sts.<domain>`, no
    redirects, no HTTP cache, 200 and text/plain only, bounded in time and size (3.3)."""

    def __init__(
        self, tls: TlsContexts, resolver: MxResolver, addresses: AddressPolicy, port: int
    ) -> None:
        self._tls = tls
        self._resolver = _PolicyHostResolver(resolver, addresses)
        self._port = port
        self._client: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._client is None:  # needs the running loop: made on first use
            connector = aiohttp.TCPConnector(
                ssl=self._tls.verified(), resolver=self._resolver, use_dns_cache=False
            )
            self._client = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT),
            )
        return self._client

    async def fetch(self, domain: str) -> StsPolicy:
        """The domain's policy; raises FetchError."""
        url = policy_url(domain, self._port)
        try:
            async with self._session().get(url, allow_redirects=False) as response:
                text = await _policy_text(response)
            return parse_policy(text)
        except (aiohttp.ClientError, OSError, TimeoutError, PolicyError, UnicodeError) as error:
            raise FetchError(f"{url}: {error or type(error).__name__}") from None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


async def _policy_text(response: aiohttp.ClientResponse) -> str:
    if response.status != 200:  # RFC 8461 3.3: a redirect is a failure too
        raise PolicyError(f"HTTP status {response.status}")
    if response.content_type != "text/plain":
        raise PolicyError(f"media type {response.content_type!r}, not text/plain")
    body = bytearray()
    async for chunk in response.content.iter_chunked(16 * 1024):
        body.extend(chunk)
        if len(body) > MAX_POLICY_BYTES:
            raise PolicyError(f"policy larger than {MAX_POLICY_BYTES} bytes")
    return body.decode(response.charset or "utf-8")


@dataclass(frozen=True, slots=True)
class _Cached:
    policy_id: str
    policy: StsPolicy
    fetched: float


class StsPolicies:
    """Each domain's current policy, per RFC 8461 5.1: the TXT id says whether the cached
    policy is current; a failed fetch keeps an unexpired cached policy, and without one
    the domain has no policy; a missing TXT record does not drop a cached policy."""

    def __init__(
        self,
        resolver: MxResolver,
        fetcher: PolicyFetcher,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolver = resolver
        self._fetcher = fetcher
        self._clock = clock
        self._cache: TtlCache[_Cached] = TtlCache(clock=clock)
        self._failed: TtlCache[bool] = TtlCache(clock=clock)
        self._fetching: dict[tuple[str, str], asyncio.Task[_Cached | None]] = {}
        self._warned: TtlCache[StsPolicy] = TtlCache(clock=clock)

    async def policy(self, domain: str, *, refresh: bool = False) -> StsPolicy | None:
        """The policy to apply to `domain` now, or None. `refresh` fetches again even when
        the id is unchanged (5.1: before failing mail over a policy), at most every
        RETRY_AFTER_FAILURE seconds."""
        cached = self._cache.get(domain)
        policy_id = await self._policy_id(domain)
        if policy_id is None:
            return cached.policy if cached else None
        if cached is not None and cached.policy_id == policy_id:
            recent = self._clock() - cached.fetched < RETRY_AFTER_FAILURE
            if not refresh or recent:
                return cached.policy
        fetched = await self._fetch_shared(domain, policy_id)
        found = fetched or cached
        return found.policy if found else None

    async def _policy_id(self, domain: str) -> str | None:
        lookup = await self._resolver.txt(f"_mta-sts.{domain}")
        strings = [b"".join(rr.strings).decode("ascii", "replace") for rr in lookup.rdata]
        try:
            return parse_txt(strings)
        except PolicyError:
            return None

    async def _fetch_shared(self, domain: str, policy_id: str) -> _Cached | None:
        """One fetch per (domain, id) at a time; callers cancelled do not cancel it."""
        key = (domain, policy_id)
        if self._failed.get(f"{domain} {policy_id}"):
            return None
        task = self._fetching.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(domain, policy_id))
            self._fetching[key] = task
            task.add_done_callback(lambda _: self._fetching.pop(key, None))
        return await asyncio.shield(task)

    async def _fetch(self, domain: str, policy_id: str) -> _Cached | None:
        try:
            policy = await self._fetcher.fetch(domain)
        except FetchError as error:
            logger.warning("MTA-STS policy of %s (id %s): %s", domain, policy_id, error)
            self._failed.put(f"{domain} {policy_id}", True, RETRY_AFTER_FAILURE)
            return None
        cached = _Cached(policy_id, policy, self._clock())
        self._cache.put(domain, cached, policy.max_age)
        logger.info("MTA-STS policy of %s (id %s): mode %s", domain, policy_id, policy.mode)
        return cached

    async def apply(self, domain: str, site: Site) -> Site:
        """`site` as `domain`'s policy has it (`enforce`: matching MX hosts only, verified
        TLS; `testing`: unchanged, mismatches logged). Raises SiteError (transient) when
        an enforced policy leaves no MX host."""
        if not site.path.enable_mta_sts or ip_literal(domain) is not None:
            return site
        policy = await self.policy(domain)
        if policy is None or policy.mode == "none":
            return site
        if policy.mode == "testing":
            self._warn_testing(domain, site, policy)
            return site
        enforced = enforced_site(site, policy)
        if isinstance(enforced, Reply):
            enforced = await self._after_refresh(domain, site, policy, enforced)
        return enforced

    async def _after_refresh(
        self, domain: str, site: Site, policy: StsPolicy, reply: Reply
    ) -> Site:
        fresh = await self.policy(domain, refresh=True)
        if fresh is not None and fresh != policy:
            return await self.apply(domain, site)
        hosts = ", ".join(h for group in site.hosts for h in group)
        text = f"{reply.text} of {domain} ({hosts})"
        raise SiteError(Outcome(reply.with_text(text), "dns"))

    def _warn_testing(self, domain: str, site: Site, policy: StsPolicy) -> None:
        unmatched = unmatched_hosts(site, policy)
        if not unmatched or self._warned.get(domain) == policy:
            return
        self._warned.put(domain, policy, TESTING_WARNING_INTERVAL)
        logger.warning(
            "MTA-STS testing policy of %s does not match MX %s; delivering anyway",
            domain,
            ", ".join(unmatched),
        )

    async def close(self) -> None:
        for task in list(self._fetching.values()):
            task.cancel()
        await asyncio.gather(*self._fetching.values(), return_exceptions=True)
        await self._fetcher.close()
