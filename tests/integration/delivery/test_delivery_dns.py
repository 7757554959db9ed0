"""Site resolution against real DNS packets: null MX, NXDOMAIN, failures, caching, loops."""

from __future__ import annotations

import pytest

from mta.config import DnsConfig
from mta.delivery import MxResolver, SiteError
from tests.integration.delivery.delivery_support import EngineFactory, MxLayout
from tests.support.dns_server import TestDNSServer


@pytest.fixture
def resolver(dns_config: DnsConfig) -> MxResolver:
    return MxResolver(dns_config)


async def resolve_error(resolver: MxResolver, domain: str) -> SiteError:
    with pytest.raises(SiteError) as caught:
        await resolver.resolve_site(domain, port=25, tls="Opportunistic")
    return caught.value


async def test_site_lists_mx_hosts_by_preference(dns_server: TestDNSServer, resolver) -> None:
    dns_server.add("pref.test", "MX", "30 c.pref.test.", "10 B.pref.test.", "20 a.pref.test.")
    dns_server.add("pref.test", "MX", "10 d.pref.test.", "40 b.pref.test.")

    site = await resolver.resolve_site("Pref.Test", port=2525, tls="Required")

    assert site.hosts == (("b.pref.test", "d.pref.test"), ("a.pref.test",), ("c.pref.test",))
    assert site.name == "a.pref.test|b.pref.test|c.pref.test|d.pref.test"
    assert (site.port, site.tls) == (2525, "Required")


async def test_null_mx_is_permanent_556(dns_server: TestDNSServer, resolver) -> None:
    dns_server.add("nullmx.test", "MX", "0 .")

    error = await resolve_error(resolver, "nullmx.test")

    assert (error.reply.code, error.reply.enhanced) == (556, "5.1.10")
    assert error.outcome.kind == "permanent"
    assert error.outcome.command == "dns"
    assert "nullmx.test" in error.reply.text


async def test_nxdomain_is_permanent_550_5_1_2(resolver) -> None:
    error = await resolve_error(resolver, "does-not-exist.test")

    assert (error.reply.code, error.reply.enhanced) == (550, "5.1.2")
    assert error.outcome.kind == "permanent"


async def test_no_mx_and_no_address_is_permanent(dns_server: TestDNSServer, resolver) -> None:
    dns_server.add("txtonly.test", "TXT", '"v=spf1 -all"')

    error = await resolve_error(resolver, "txtonly.test")

    assert (error.reply.code, error.reply.enhanced) == (550, "5.1.2")


@pytest.mark.parametrize("mode", ["SERVFAIL", "REFUSED", "timeout"])
async def test_dns_failure_is_transient(dns_server: TestDNSServer, resolver, mode: str) -> None:
    dns_server.fail("broken.test", mode)

    error = await resolve_error(resolver, "broken.test")

    assert (error.reply.code, error.reply.enhanced) == (451, "4.4.3")
    assert error.outcome.kind == "transient"


async def test_failure_of_the_implicit_mx_address_lookup_is_transient(
    dns_server: TestDNSServer, resolver
) -> None:
    dns_server.add("flaky.test", "TXT", '"x"')  # exists, no MX: the A lookup decides
    dns_server.fail("flaky.test", "SERVFAIL")
    error = await resolve_error(resolver, "flaky.test")
    assert error.outcome.kind == "transient"


async def test_answers_are_cached(dns_server: TestDNSServer, resolver, mx: MxLayout) -> None:
    first = await resolver.resolve_site("example.com", port=25, tls="Opportunistic")
    second = await resolver.resolve_site("EXAMPLE.com.", port=25, tls="Opportunistic")
    assert first == second
    await resolver.addresses("mx1.example.com")
    assert await resolver.addresses("mx1.example.com") == [mx.mx1]

    assert dns_server.query_count("example.com", "MX") == 1
    assert dns_server.query_count("mx1.example.com", "A") == 1


async def test_short_ttls_are_raised_to_min_ttl(dns_server: TestDNSServer, resolver) -> None:
    dns_server.add("shortttl.test", "MX", "10 mx.shortttl.test.", ttl=0)

    await resolver.resolve_site("shortttl.test", port=25, tls="Opportunistic")
    dns_server.remove("shortttl.test")  # a fresh query would now say NXDOMAIN
    site = await resolver.resolve_site("shortttl.test", port=25, tls="Opportunistic")

    assert site.hosts == (("mx.shortttl.test",),)
    assert dns_server.query_count("shortttl.test", "MX") == 1


async def test_negative_answers_are_cached(resolver, dns_server: TestDNSServer) -> None:
    await resolve_error(resolver, "nothing.test")
    await resolve_error(resolver, "nothing.test")
    assert dns_server.query_count("nothing.test", "MX") == 1


async def test_ip_literal_needs_no_lookup(resolver, dns_server: TestDNSServer) -> None:
    assert await resolver.addresses("192.0.2.7") == ["192.0.2.7"]
    site = await resolver.resolve_site("[192.0.2.7]", port=25, tls="Opportunistic")
    assert site.hosts == (("192.0.2.7",),)
    assert sum(dns_server.queries.values()) == 0


async def test_addresses_returns_a_before_aaaa(dns_server: TestDNSServer, resolver) -> None:
    dns_server.add("dual.test", "AAAA", "2001:db8::25")
    dns_server.add("dual.test", "A", "192.0.2.25")
    assert await resolver.addresses("dual.test") == ["192.0.2.25", "2001:db8::25"]


async def test_addresses_errors_are_per_host(dns_server: TestDNSServer, resolver) -> None:
    dns_server.fail("down.test", "SERVFAIL")
    with pytest.raises(SiteError) as transient:
        await resolver.addresses("down.test")
    with pytest.raises(SiteError) as permanent:
        await resolver.addresses("gone.test")
    assert transient.value.outcome.kind == "transient"
    assert (permanent.value.reply.code, permanent.value.reply.enhanced) == (550, "5.4.4")


async def test_mx_pointing_at_this_node_is_a_mail_loop(
    mx: MxLayout, make_engine: EngineFactory
) -> None:
    engine = make_engine(mx.port, own_addresses=[(mx.mx1, mx.port)])

    with pytest.raises(SiteError) as caught:
        await engine.site_for("example.com", None)

    assert (caught.value.reply.code, caught.value.reply.enhanced) == (554, "5.4.6")
    assert caught.value.outcome.kind == "permanent"


async def test_wildcard_listener_owns_every_loopback_address(
    mx: MxLayout, make_engine: EngineFactory
) -> None:
    engine = make_engine(mx.port, own_addresses=[("0.0.0.0", mx.port)])

    with pytest.raises(SiteError) as caught:
        await engine.site_for("example.com", None)

    assert caught.value.reply.enhanced == "5.4.6"


async def test_this_node_as_backup_mx_keeps_the_better_ones(
    mx: MxLayout, make_engine: EngineFactory
) -> None:
    # RFC 5321 5.1: drop ourselves and every less preferred MX, deliver to the rest
    engine = make_engine(mx.port, own_addresses=[(mx.mx2, mx.port)])

    site = await engine.site_for("example.com", None)

    assert site.hosts == (("mx1.example.com",),)
    assert site.name == "mx1.example.com|mx2.example.com"


async def test_same_address_on_another_port_is_no_loop(
    mx: MxLayout, make_engine: EngineFactory
) -> None:
    engine = make_engine(mx.port, own_addresses=[("0.0.0.0", mx.port + 1), (mx.mx1, 2525)])

    site = await engine.site_for("example.com", None)

    assert site.hosts == (("mx1.example.com",), ("mx2.example.com",))
