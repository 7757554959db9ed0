"""Fixtures for delivery tests: an MX layout in the test DNS server and engine factories.

Delivery always connects to `smtp_port` on each MX address, so mx1 and mx2 live on two
distinct loopback addresses that share one port number.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from mta.config import DnsConfig
from mta.delivery import DeliveryEngine, MxResolver
from mta.egress.rules import delivery_layer
from mta.units import Duration
from shaping.loader import read_text
from shaping.rules import ShapingRules
from tests.integration.delivery.delivery_support import EngineFactory, MxLayout, delivery_config
from tests.support.dns_server import TestDNSServer
from tests.support.net import free_port, unused_loopback_address


@pytest.fixture
def mx(dns_server: TestDNSServer) -> MxLayout:
    mx1, mx2 = unused_loopback_address(), unused_loopback_address()
    port = free_port(mx1, mx2)
    dns_server.add("example.com", "MX", "10 mx1.example.com.", "20 mx2.example.com.")
    dns_server.add("mx1.example.com", "A", mx1)
    dns_server.add("mx2.example.com", "A", mx2)
    return MxLayout(port, mx1, mx2)


@pytest.fixture
def dns_config(dns_server: TestDNSServer) -> DnsConfig:
    return DnsConfig(
        nameservers=(f"{dns_server.host}:{dns_server.port}",),
        timeout=Duration(0.5),
        min_ttl=Duration(30.0),
        max_ttl=Duration(3600.0),
    )


@pytest.fixture
async def make_engine(dns_config: DnsConfig) -> AsyncIterator[EngineFactory]:
    """`make_engine(port, own_addresses=(), shaping=None, **DeliveryConfig overrides)`;
    `shaping` is the text of a shaping file merged over `[delivery]`; closed at teardown."""
    engines: list[DeliveryEngine] = []

    def make(
        port: int,
        *,
        own_addresses: Iterable[tuple[str, int]] = (),
        shaping: str | None = None,
        **overrides: Any,
    ) -> DeliveryEngine:
        config = delivery_config(port, **overrides)
        rules = None
        if shaping is not None:
            layers = [delivery_layer(config), read_text("test-shaping.toml", shaping)]
            rules = ShapingRules.load(layers)
        engine = DeliveryEngine(
            config,
            MxResolver(dns_config),
            ehlo_name="mta.test",
            own_addresses=own_addresses,
            rules=rules,
        )
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.close()
