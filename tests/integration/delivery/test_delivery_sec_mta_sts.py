"""MTA-STS against a local HTTPS policy server: discovery, caching, and each mode."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mta.config import DnsConfig
from mta.delivery import DeliveryEngine, MxResolver, SiteError
from mta.delivery.private import AddressPolicy
from mta.delivery.sts_fetch import PolicyFetcher, StsPolicies
from mta.delivery.tls import TlsContexts
from mta.egress.rules import delivery_layer
from mta.units import Duration
from shaping.loader import read_text
from shaping.rules import ShapingRules
from tests.integration.delivery.delivery_support import MxLayout, SinkFactory, delivery_config, job
from tests.integration.delivery.sts_support import PolicyServer, TestPki, policy_text, publish
from tests.support.dns_server import TestDNSServer
from tests.support.smtp_sink import ScriptedSink
from tests.support.tls import make_self_signed_context


@pytest.fixture
def pki(tmp_path: Path) -> TestPki:
    return TestPki(tmp_path)


@pytest.fixture
async def policy_server(pki: TestPki) -> AsyncIterator[PolicyServer]:
    context = pki.server_context("mta-sts.example.com")
    async with PolicyServer(context, policy_text("enforce", "mx2.example.com")) as server:
        yield server


@pytest.fixture
def fresh_dns(dns_server: TestDNSServer) -> DnsConfig:
    """No TTL floor, so a changed TXT record is seen at once."""
    nameserver = f"{dns_server.host}:{dns_server.port}"
    return DnsConfig((nameserver,), Duration(0.5), Duration(0.0), Duration(3600.0))


@pytest.fixture
async def engine(
    mx: MxLayout, fresh_dns: DnsConfig, pki: TestPki, policy_server: PolicyServer
) -> AsyncIterator[DeliveryEngine]:
    config = delivery_config(mx.port, tls_ca_file=pki.ca_file, mta_sts_port=policy_server.port)
    engine = DeliveryEngine(config, MxResolver(fresh_dns), ehlo_name="mta.test")
    yield engine
    await engine.close()


async def tls_sinks(mx: MxLayout, sink_factory: SinkFactory, pki: TestPki) -> list[ScriptedSink]:
    return [
        await sink_factory(host=addr, port=mx.port, starttls=pki.server_context(name))
        for addr, name in ((mx.mx1, "mx1.example.com"), (mx.mx2, "mx2.example.com"))
    ]


async def test_enforce_delivers_only_to_matching_mx_with_verified_tls(
    mx: MxLayout,
    sink_factory: SinkFactory,
    pki: TestPki,
    dns_server: TestDNSServer,
    policy_server: PolicyServer,
    engine: DeliveryEngine,
) -> None:
    mx1, mx2 = await tls_sinks(mx, sink_factory, pki)
    publish(dns_server, "example.com", policy_server, "1")

    site = await engine.site_for("example.com", None)
    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert (site.hosts, site.tls) == ((("mx2.example.com",),), "Required")
    assert site.name == "mx1.example.com|mx2.example.com@mta-sts"
    assert outcome.kind == "delivered" and outcome.tls_protocol_version
    assert outcome.peer is not None and outcome.peer.name == "mx2.example.com"
    assert mx1.connections == 0 and mx2.messages[0].tls
    assert policy_server.hits == 1


async def test_enforce_refuses_an_unverified_certificate_and_plain_text(
    mx: MxLayout,
    sink_factory: SinkFactory,
    dns_server: TestDNSServer,
    policy_server: PolicyServer,
    engine: DeliveryEngine,
) -> None:
    self_signed = await sink_factory(
        host=mx.mx2, port=mx.port, starttls=make_self_signed_context("mx2.example.com")
    )
    publish(dns_server, "example.com", policy_server, "1")
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]
    assert (outcome.kind, outcome.reply.enhanced) == ("transient", "4.7.5")

    await self_signed.stop()
    plain = await sink_factory(host=mx.mx2, port=mx.port)  # no STARTTLS at all
    outcome = (await engine.deliver(site, job("b@example.com", msg_id="m2")))["b@example.com"]
    assert (outcome.kind, outcome.reply.enhanced) == ("transient", "4.7.4")
    assert not self_signed.messages and not plain.messages


async def test_enforce_with_no_matching_mx_is_transient(
    dns_server: TestDNSServer, policy_server: PolicyServer, engine: DeliveryEngine
) -> None:
    policy_server.policy = policy_text("enforce", "*.elsewhere.test")
    publish(dns_server, "example.com", policy_server, "1")

    with pytest.raises(SiteError) as raised:
        await engine.site_for("example.com", None)

    reply = raised.value.reply
    assert (reply.code, reply.enhanced) == (451, "4.7.5")
    assert "example.com" in reply.text and "mx1.example.com" in reply.text


@pytest.mark.usefixtures("mx")
async def test_the_policy_is_cached_by_id_and_refetched_when_the_id_changes(
    dns_server: TestDNSServer, policy_server: PolicyServer, engine: DeliveryEngine
) -> None:
    publish(dns_server, "example.com", policy_server, "1")
    await engine.site_for("example.com", None)
    await engine.site_for("example.com", None)
    assert policy_server.hits == 1

    policy_server.policy = policy_text("enforce", "mx1.example.com")
    publish(dns_server, "example.com", policy_server, "2")
    site = await engine.site_for("example.com", None)
    assert policy_server.hits == 2
    assert site.hosts == (("mx1.example.com",),)


@pytest.mark.usefixtures("mx")
async def test_a_failed_fetch_or_a_vanished_record_keeps_the_cached_policy(
    dns_server: TestDNSServer, policy_server: PolicyServer, engine: DeliveryEngine
) -> None:
    publish(dns_server, "example.com", policy_server, "1")
    await engine.site_for("example.com", None)

    policy_server.status = 500
    publish(dns_server, "example.com", policy_server, "2")
    site = await engine.site_for("example.com", None)
    assert policy_server.hits == 2
    assert site.hosts == (("mx2.example.com",),)  # still enforced (RFC 8461 5.1)

    dns_server.remove("_mta-sts.example.com", "TXT")
    site = await engine.site_for("example.com", None)
    assert site.hosts == (("mx2.example.com",),)


@pytest.mark.parametrize(
    "breakage", ["server error", "redirect", "html", "too big", "wrong certificate"]
)
async def test_without_a_cached_policy_a_bad_fetch_means_no_policy(
    breakage: str,
    mx: MxLayout,
    sink_factory: SinkFactory,
    pki: TestPki,
    dns_server: TestDNSServer,
    policy_server: PolicyServer,
    engine: DeliveryEngine,
) -> None:
    if breakage == "server error":
        policy_server.status = 404
    elif breakage == "redirect":  # RFC 8461 3.3: redirects are not followed
        policy_server.redirect = True
    elif breakage == "html":
        policy_server.content_type = "text/html"
    elif breakage == "too big":
        policy_server.policy += "x: " + "y" * 70_000 + "\n"
    else:
        await policy_server.restart(pki.server_context("mta-sts.other.test"))
    mx1, _ = await tls_sinks(mx, sink_factory, pki)
    publish(dns_server, "example.com", policy_server, "1")

    site = await engine.site_for("example.com", None)
    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert site.name == "mx1.example.com|mx2.example.com"  # the plain MX site
    assert outcome.kind == "delivered" and len(mx1.messages) == 1
    assert policy_server.hits == (0 if breakage == "wrong certificate" else 1)


async def test_testing_mode_delivers_normally_and_logs(
    mx: MxLayout,
    sink_factory: SinkFactory,
    pki: TestPki,
    dns_server: TestDNSServer,
    policy_server: PolicyServer,
    engine: DeliveryEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mx1, _ = await tls_sinks(mx, sink_factory, pki)
    policy_server.policy = policy_text("testing", "mx2.example.com")
    publish(dns_server, "example.com", policy_server, "1")

    with caplog.at_level(logging.WARNING, logger="mta.delivery"):
        site = await engine.site_for("example.com", None)
        outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert site.name == "mx1.example.com|mx2.example.com"
    assert outcome.kind == "delivered" and len(mx1.messages) == 1
    assert "MTA-STS testing policy of example.com does not match MX mx1.example.com" in caplog.text


@pytest.mark.usefixtures("mx")
async def test_none_mode_changes_nothing(
    dns_server: TestDNSServer, policy_server: PolicyServer, engine: DeliveryEngine
) -> None:
    policy_server.policy = "version: STSv1\nmode: none\nmax_age: 600\n"
    publish(dns_server, "example.com", policy_server, "1")

    site = await engine.site_for("example.com", None)

    assert (site.name, site.tls) == ("mx1.example.com|mx2.example.com", "Opportunistic")
    assert policy_server.hits == 1


async def test_enable_mta_sts_false_on_the_path_skips_it(
    mx: MxLayout,
    fresh_dns: DnsConfig,
    dns_server: TestDNSServer,
    policy_server: PolicyServer,
) -> None:
    publish(dns_server, "example.com", policy_server, "1")
    config = delivery_config(mx.port, mta_sts_port=policy_server.port)
    shaping = read_text("t.toml", '["example.com"]\nenable_mta_sts = false\n')
    rules = ShapingRules.load([delivery_layer(config), shaping])
    engine = DeliveryEngine(config, MxResolver(fresh_dns), ehlo_name="mta.test", rules=rules)
    try:
        site = await engine.site_for("example.com", None)
    finally:
        await engine.close()

    assert site.hosts == (("mx1.example.com",), ("mx2.example.com",))
    assert policy_server.hits == 0
    assert dns_server.query_count("_mta-sts.example.com", "TXT") == 0


@pytest.mark.usefixtures("mx")
async def test_the_policy_host_is_subject_to_the_private_address_rule(
    fresh_dns: DnsConfig, pki: TestPki, dns_server: TestDNSServer, policy_server: PolicyServer
) -> None:
    publish(dns_server, "example.com", policy_server, "1")
    resolver = MxResolver(fresh_dns)
    fetcher = PolicyFetcher(TlsContexts(pki.ca_file), resolver, AddressPolicy(), policy_server.port)
    policies = StsPolicies(resolver, fetcher)
    try:
        assert await policies.policy("example.com") is None
    finally:
        await policies.close()
    assert policy_server.hits == 0
