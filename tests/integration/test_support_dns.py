"""The test DNS server answers real DNS packets the way resolvers expect."""

from __future__ import annotations

import dns.asyncresolver
import dns.flags
import dns.message
import dns.nameserver
import dns.query
import dns.rcode
import dns.resolver
import pytest

from tests.support.dns_server import TestDNSServer


def resolver_for(server: TestDNSServer, *, lifetime: float = 1.0) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver(server.host, server.port)]
    resolver.lifetime = lifetime
    resolver.timeout = lifetime
    return resolver


async def test_mx_and_address_records(dns_server: TestDNSServer) -> None:
    dns_server.add("example.com", "MX", "10 mx1.example.com.", "20 mx2.example.com")
    dns_server.add("mx1.example.com", "A", "127.0.0.2")
    dns_server.add("MX2.Example.COM.", "AAAA", "::1")
    resolver = resolver_for(dns_server)

    mx = await resolver.resolve("Example.Com", "MX")
    # Name compression may point into the question, so compare case-insensitively.
    assert sorted((r.preference, r.exchange.to_text().lower()) for r in mx) == [
        (10, "mx1.example.com."),
        (20, "mx2.example.com."),
    ]
    assert mx.response.flags & dns.flags.AA
    assert mx.rrset is not None and mx.rrset.ttl == 300
    a = await resolver.resolve("mx1.example.com", "A")
    assert [r.address for r in a] == ["127.0.0.2"]
    aaaa = await resolver.resolve("mx2.example.com", "AAAA")
    assert [r.address for r in aaaa] == ["::1"]


async def test_null_mx(dns_server: TestDNSServer) -> None:
    dns_server.add("example.net", "MX", "0 .")
    answer = await resolver_for(dns_server).resolve("example.net", "MX")
    [record] = list(answer)
    assert record.preference == 0
    assert record.exchange.to_text() == "."


async def test_nxdomain_and_nodata_carry_soa(dns_server: TestDNSServer) -> None:
    dns_server.add("mx1.example.com", "A", "127.0.0.2", ttl=60)
    resolver = resolver_for(dns_server)

    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolver.resolve("nothing.example.com", "MX")
    with pytest.raises(dns.resolver.NoAnswer):
        await resolver.resolve("mx1.example.com", "MX")
    # example.com only exists as a parent of mx1: NODATA, not NXDOMAIN.
    with pytest.raises(dns.resolver.NoAnswer):
        await resolver.resolve("example.com", "MX")

    query = dns.message.make_query("nothing.example.com", "A")
    response = await dns.asyncquery.udp(query, dns_server.host, port=dns_server.port, timeout=1)
    assert response.rcode() == dns.rcode.NXDOMAIN
    [soa] = response.authority
    assert soa.name.to_text() == "example.com."
    assert soa[0].minimum == dns_server.negative_ttl


@pytest.mark.parametrize(("mode", "rcode"), [("SERVFAIL", "SERVFAIL"), ("REFUSED", "REFUSED")])
async def test_scripted_error_rcodes(dns_server: TestDNSServer, mode: str, rcode: str) -> None:
    dns_server.add("example.org", "MX", "10 mx.example.org.")
    dns_server.fail("example.org", mode)
    query = dns.message.make_query("example.org", "MX")
    response = await dns.asyncquery.udp(query, dns_server.host, port=dns_server.port, timeout=1)
    assert response.rcode() == dns.rcode.from_text(rcode)
    with pytest.raises(dns.resolver.NoNameservers):
        await resolver_for(dns_server).resolve("example.org", "MX")

    dns_server.clear_failure("EXAMPLE.org.")
    answer = await resolver_for(dns_server).resolve("example.org", "MX")
    assert [r.exchange.to_text() for r in answer] == ["mx.example.org."]


async def test_timeout_never_answers(dns_server: TestDNSServer) -> None:
    dns_server.add("slow.example", "A", "127.0.0.3")
    dns_server.fail("slow.example", "timeout")
    with pytest.raises(dns.resolver.LifetimeTimeout):
        await resolver_for(dns_server, lifetime=0.3).resolve("slow.example", "A")
    assert dns_server.query_count("slow.example", "A") >= 1


async def test_cname_is_followed_within_the_answer(dns_server: TestDNSServer) -> None:
    dns_server.add("alias.example", "CNAME", "target.example.")
    dns_server.add("target.example", "MX", "10 mx.target.example.")
    dns_server.add("dangling.example", "CNAME", "missing.example.")
    resolver = resolver_for(dns_server)

    answer = await resolver.resolve("alias.example", "MX")
    assert answer.canonical_name.to_text() == "target.example."
    assert [r.exchange.to_text() for r in answer] == ["mx.target.example."]
    assert [rrset.rdtype for rrset in answer.response.answer] == [
        dns.rdatatype.CNAME,
        dns.rdatatype.MX,
    ]
    cname = await resolver.resolve("alias.example", "CNAME")
    assert [r.target.to_text() for r in cname] == ["target.example."]
    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolver.resolve("dangling.example", "A")


async def test_queries_are_counted_per_name_and_type(dns_server: TestDNSServer) -> None:
    dns_server.add("example.com", "MX", "10 mx1.example.com.")
    resolver = resolver_for(dns_server)
    resolver.cache = dns.resolver.Cache()
    for _ in range(3):
        await resolver.resolve("example.com", "MX")
    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolver.resolve("other.example.com", "A")
    assert dns_server.queries[("example.com", "MX")] == 1  # then cached
    assert dns_server.query_count("EXAMPLE.COM.", "mx") == 1
    assert dns_server.queries[("other.example.com", "A")] == 1


async def test_remove_records(dns_server: TestDNSServer) -> None:
    dns_server.add("example.com", "MX", "10 mx1.example.com.")
    dns_server.add("example.com", "A", "127.0.0.5")
    resolver = resolver_for(dns_server)
    dns_server.remove("example.com", "MX")
    with pytest.raises(dns.resolver.NoAnswer):
        await resolver.resolve("example.com", "MX")
    dns_server.remove("example.com")
    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolver.resolve("example.com", "A")


async def test_large_answer_truncates_over_udp_and_is_complete_over_tcp(
    dns_server: TestDNSServer,
) -> None:
    hosts = [f"{i} mx{i:02d}.a-rather-long-mail-exchanger-name.example.com." for i in range(40)]
    dns_server.add("big.example.com", "MX", *hosts)
    query = dns.message.make_query("big.example.com", "MX", use_edns=False)
    udp = await dns.asyncquery.udp(query, dns_server.host, port=dns_server.port, timeout=1)
    assert udp.flags & dns.flags.TC
    assert not udp.answer

    answer = await resolver_for(dns_server).resolve("big.example.com", "MX")
    assert len(answer) == 40
    assert dns_server.query_count("big.example.com", "MX") == 3  # UDP, UDP (TC), TCP


async def test_truncate_mode_forces_tcp(dns_server: TestDNSServer) -> None:
    dns_server.add("tcp.example", "A", "127.0.0.9")
    dns_server.fail("tcp.example", "TRUNCATE")
    answer = await resolver_for(dns_server).resolve("tcp.example", "A")
    assert [r.address for r in answer] == ["127.0.0.9"]
    assert dns_server.query_count("tcp.example", "A") == 2


async def test_binds_another_loopback_address() -> None:
    async with TestDNSServer("127.0.0.53") as server:
        server.add("example.com", "A", "127.0.0.1")
        answer = await resolver_for(server).resolve("example.com", "A")
        assert answer.nameserver == "127.0.0.53"
        assert [r.address for r in answer] == ["127.0.0.1"]
