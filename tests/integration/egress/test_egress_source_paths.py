"""The delivery engine with `[egress]` sources: each source binds its own 127.0.0.x address and
says its own EHLO name (seen by the sink), a site is named "source->site", and the shaping
of a path is resolved with its source (per-source limits, applied by the real shaper)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mta.config import Config, config_from_mapping
from mta.delivery import DeliveryEngine, Job, MxResolver, PathThrottled
from mta.egress.rules import NodeRules
from mta.egress.sources import EgressSources
from mta.routing import Destination
from shaping.spec import parse_throttle_spec
from tests.support.smtp_sink import ScriptedSink

JOB = Job("m1", "app@example.org", ("bob@example.com",), b"Subject: hi\r\n\r\nHello\r\n")
SHAPING = """
["default".sources."slow"]
max_message_rate = "1/h"
connection_limit = 1
"""


def egress_config(tmp_path: Path, **egress: Any) -> Config:
    shaping = tmp_path / "shaping.toml"
    shaping.write_text(SHAPING)
    sources = {
        "fast": {"source_address": "127.0.0.2", "ehlo_domain": "fast.mta.test"},
        "slow": {"source_address": "127.0.0.3", "ehlo_domain": "slow.mta.test"},
    }
    pools = {
        "fast-only": {"sources": [{"name": "fast"}]},
        "slow-only": {"sources": [{"name": "slow", "weight": 3}]},
    }
    return config_from_mapping(
        {
            "delivery": {"connect_timeout": "3s", "allowed_private_networks": ["127.0.0.0/8"]},
            "shaping": {"files": [str(shaping)]},
            "egress": {"sources": sources, "pools": pools, **egress},
        }
    )


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[DeliveryEngine]:
    config = egress_config(tmp_path, tenant_pools={"acme": "slow-only"}, default_pool="fast-only")
    engine = DeliveryEngine(
        config.delivery,
        MxResolver(config.dns),
        ehlo_name="mta.test",
        rules=NodeRules(config).live,
        sources=EgressSources(config.egress),
    )
    yield engine
    await engine.close()


def relay(port: int, pool: str | None = None) -> Destination:
    return Destination("relay", (f"127.0.0.1:{port}",), "none", pool=pool)


async def test_each_source_binds_its_address_and_ehlo_name(engine: DeliveryEngine) -> None:
    async with ScriptedSink() as sink:
        fast = await engine.site_for("example.com", relay(sink.port))  # the default pool
        slow = await engine.site_for("example.com", relay(sink.port), tenant="acme")
        for site in (fast, slow):
            outcomes = await engine.deliver(site, JOB)
            assert outcomes["bob@example.com"].kind == "delivered", outcomes
    seen = [(message.peer, message.ehlo) for message in sink.messages]
    assert seen == [("127.0.0.2", "fast.mta.test"), ("127.0.0.3", "slow.mta.test")]
    assert fast.name == f"fast->relay:127.0.0.1:{sink.port}" and fast.pool == "fast-only"
    assert slow.source == "slow" and slow.base_name == f"relay:127.0.0.1:{sink.port}"


async def test_route_pool_wins_over_tenant_pool(engine: DeliveryEngine) -> None:
    site = await engine.site_for("example.com", relay(2525, pool="fast-only"), tenant="acme")
    assert (site.pool, site.source) == ("fast-only", "fast")


async def test_shaping_is_resolved_per_source(engine: DeliveryEngine) -> None:
    fast = await engine.site_for("example.com", relay(2525))
    slow = await engine.site_for("example.com", relay(2525), tenant="acme")
    assert slow.path.connection_limit == 1 and fast.path.connection_limit != 1
    assert slow.path.max_message_rate == parse_throttle_spec("1/h")
    assert fast.path.max_message_rate is None
    assert not (await engine.admit(slow)).throttled  # the first message of the hour
    assert (await engine.admit(slow)).throttled  # the slow source's own limit
    for _ in range(5):
        assert not (await engine.admit(fast)).throttled  # the fast source is not held


async def test_no_pool_keeps_the_plain_site(tmp_path: Path) -> None:
    config = egress_config(tmp_path, tenant_pools={"acme": "slow-only"})
    engine = DeliveryEngine(
        config.delivery,
        MxResolver(config.dns),
        ehlo_name="mta.test",
        sources=EgressSources(config.egress),
    )
    site = await engine.site_for("example.com", relay(2525), tenant="other")
    assert (site.name, site.source, site.pool) == ("relay:127.0.0.1:2525", None, None)
    lmtp = await engine.site_for("l.test", Destination("lmtp", ("127.0.0.1:8024",)), tenant="acme")
    assert lmtp.source is None  # LMTP hand-offs (Mailman) never take an egress source
    await engine.close()


async def test_unplumbed_source_address_is_unavailable(tmp_path: Path) -> None:
    """An address that is not on this machine makes the source unavailable (transient),
    and a pool with no other source then holds its legs."""
    config = egress_config(tmp_path, default_pool="fast-only")
    raw = {"source_address": "192.0.2.1"}  # TEST-NET-1: never bound here, never contacted
    config = config_from_mapping(
        {
            "delivery": {"allowed_private_networks": ["127.0.0.0/8"]},
            "egress": {
                "sources": {"fast": raw},
                "pools": {"fast-only": {"sources": [{"name": "fast"}]}},
                "default_pool": "fast-only",
                "retry_interval": "1h",
                "max_retry_interval": "1h",
            },
        }
    )
    sources = EgressSources(config.egress)
    engine = DeliveryEngine(
        config.delivery, MxResolver(config.dns), ehlo_name="mta.test", sources=sources
    )
    async with ScriptedSink() as sink:
        site = await engine.site_for("example.com", relay(sink.port))
        outcome = (await engine.deliver(site, JOB))["bob@example.com"]
        assert (
            outcome.kind == "transient" and "egress source fast: cannot bind" in outcome.reply.text
        )
        assert sources.healthy() == {"fast": False}
        with pytest.raises(PathThrottled) as waiting:
            await engine.site_for("example.com", relay(sink.port))
        assert waiting.value.retry_after > 60
    assert sink.connections == 0
    await engine.close()
