"""`[egress]` config errors name the key; a source's health and the choice of sources."""

from __future__ import annotations

import random
from typing import Any

import pytest

from mta.config import ConfigError, config_from_mapping
from mta.egress.sources import EgressSources

SOURCES = {"a": {"source_address": "127.0.0.2"}, "b": {"source_address": "::1"}}
POOLS = {"p": {"sources": [{"name": "a", "weight": 3}, {"name": "b"}]}}


def load(egress: dict[str, Any], routes: list[dict[str, Any]] | None = None) -> Any:
    return config_from_mapping({"egress": egress, "routes": routes or []})


@pytest.mark.parametrize(
    ("egress", "error"),
    [
        ({"sources": {"x": {"source_address": "10.0.0"}}}, "egress.sources.x.source_address:"),
        ({"sources": {"x": {"bind": "10.0.0.1"}}}, "egress.sources.x.bind: unknown key"),
        (
            {"sources": {"x": {"socks5_proxy": "proxy:99999"}}},
            "egress.sources.x.socks5_proxy:",
        ),
        (
            {"sources": {"x": {"socks5_source_address": "10.0.0.1"}}},
            "egress.sources.x.socks5_source_address: needs socks5_proxy",
        ),
        (
            {"sources": {"x": {"socks5_proxy": "p:1080", "socks5_username": "u"}}},
            "egress.sources.x.socks5_password_file: goes with socks5_username",
        ),
        ({"sources": {"unspecified": {}}}, "egress.sources.unspecified: a source name"),
        (
            {"sources": SOURCES, "pools": {"p": {"sources": [{"name": "c"}]}}},
            "egress.pools.p.sources[0].name: unknown source 'c'",
        ),
        (
            {"sources": SOURCES, "pools": {"p": {"sources": [{"name": "a", "weight": 0}]}}},
            "egress.pools.p.sources: at least one weight",
        ),
        ({"sources": SOURCES, "pools": {"p": {}}}, "egress.pools.p.sources: a pool needs"),
        ({"sources": SOURCES, "pools": POOLS, "default_pool": "q"}, "egress.default_pool: unknown"),
        (
            {"sources": SOURCES, "pools": POOLS, "tenant_pools": {"acme": "q"}},
            "egress.tenant_pools.acme: unknown pool 'q'",
        ),
        ({"retry_interval": "0s"}, "egress.retry_interval: must be greater than zero"),
    ],
)
def test_errors_name_the_key(egress: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(egress)
    assert str(raised.value).startswith(error), raised.value


def test_route_pool_is_checked() -> None:
    egress = {"sources": SOURCES, "pools": POOLS}
    with pytest.raises(ConfigError, match=r"^routes\[0\]\.pool: unknown pool 'q'"):
        load(egress, [{"relay": "127.0.0.1:2525", "pool": "q"}])
    with pytest.raises(ConfigError, match=r"^routes\[0\]\.pool: only mx and relay routes"):
        load(egress, [{"lmtp": "127.0.0.1:8024", "pool": "p"}])
    assert load(egress, [{"relay": "127.0.0.1:2525", "pool": "p"}]).routes[0].pool == "p"


def test_no_egress_config_is_the_default() -> None:
    config = config_from_mapping({})
    assert not config.egress.pools and not config.egress.sources


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sources(clock: Clock) -> EgressSources:
    egress = {"sources": SOURCES, "pools": POOLS, "retry_interval": "10s"}
    egress["max_retry_interval"] = "40s"
    return EgressSources(load(egress).egress, rng=random.Random(7), clock=clock)


def test_weighted_choice() -> None:
    picker = sources(Clock())
    chosen = [picker.choose("p") for _ in range(4000)]
    assert 2700 < chosen.count("a") < 3300 and chosen.count("a") + chosen.count("b") == 4000


def test_unavailable_source_is_skipped_then_probed_once() -> None:
    clock = Clock()
    picker = sources(clock)
    picker.failed("a", "proxy down")
    assert picker.healthy() == {"a": False, "b": True}
    assert {picker.choose("p") for _ in range(50)} == {"b"}  # new legs go to the other source
    picker.failed("b", "proxy down")
    assert picker.choose("p") is None and picker.retry_after("p") == 10.0
    clock.now += 10
    probes = [picker.choose("p") for _ in range(20)]
    assert sorted(p for p in probes if p) == ["a", "b"]  # one probe each, the others wait
    picker.failed("a", "still down")  # the probe failed: twice as long
    picker.succeeded("b")
    assert picker.healthy() == {"a": False, "b": True}
    clock.now += 10
    assert {picker.choose("p") for _ in range(50)} == {"b"}  # a's next try: 20 s after
    clock.now += 10
    assert "a" in {picker.choose("p") for _ in range(50)}


def test_backoff_is_capped_and_late_failures_do_not_count() -> None:
    clock = Clock()
    picker = sources(clock)
    picker.failed("a", "down")
    for _ in range(5):
        picker.failed("a", "a leg bound before the failure")  # not a probe: no change
    picker.failed("b", "down")
    assert picker.retry_after("p") == 10.0
    for _ in range(6):
        clock.now += 100
        assert {picker.choose("p"), picker.choose("p")} == {"a", "b"}  # both probed
        picker.failed("a", "down")
        picker.failed("b", "down")
    clock.now += 1
    assert picker.retry_after("p") == 39.0  # max_retry_interval
