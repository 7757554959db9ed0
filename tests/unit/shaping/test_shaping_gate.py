"""The delivery engine's questions, answered from memory: may I connect? may I send?"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from shaping.gate import (
    LEASE_RETRY_AFTER,
    ConnectionGrant,
    Refusal,
    Shaper,
    connection_limit_key,
    message_rate_key,
)
from shaping.leases import MemoryLeases
from shaping.options import EgressPathConfig
from shaping.spec import parse_throttle_spec
from shaping.throttle import MemoryThrottle

PATH = "ip-1->mx.example.net"


def make_shaper(lease_ttl: float = 60.0) -> Shaper:
    return Shaper(MemoryThrottle(), MemoryLeases(), lease_ttl=lease_ttl)


async def test_connection_limits_smallest_first_and_given_back() -> None:
    shaper = make_shaper()
    config = EgressPathConfig(connection_limit=2, additional_connection_limits={"global": 3})
    first = await shaper.acquire_connection(PATH, config)
    second = await shaper.acquire_connection("ip-2->mx.example.net", config)
    assert isinstance(first, ConnectionGrant) and isinstance(second, ConnectionGrant)
    assert [lease.key for lease in first.held] == [connection_limit_key(PATH, None), "global"]
    third = await shaper.acquire_connection(PATH, config)
    assert isinstance(third, ConnectionGrant)
    refused = await shaper.acquire_connection("ip-3->mx.example.net", config)
    assert isinstance(refused, Refusal)
    assert "global" in refused.reason
    assert refused.retry_after == LEASE_RETRY_AFTER
    # The refused attempt took ip-3's own slot first and gave it back.
    assert await shaper.leases.count(connection_limit_key("ip-3->mx.example.net", None)) == 0
    await first.release()
    assert isinstance(await shaper.acquire_connection(PATH, config), ConnectionGrant)


async def test_connection_rate_refusal_releases_the_leases() -> None:
    shaper = make_shaper()
    config = EgressPathConfig(max_connection_rate=parse_throttle_spec("1/min"))
    assert isinstance(await shaper.acquire_connection(PATH, config), ConnectionGrant)
    refused = await shaper.acquire_connection(PATH, config)
    assert isinstance(refused, Refusal)
    assert refused.retry_after == pytest.approx(60, abs=1)
    assert await shaper.leases.count(connection_limit_key(PATH, None)) == 1


async def test_grant_keeps_leases_alive_and_releases_on_exit() -> None:
    shaper = make_shaper(lease_ttl=0.6)
    config = EgressPathConfig(connection_limit=1)
    grant = await shaper.acquire_connection(PATH, config)
    assert isinstance(grant, ConnectionGrant)
    async with grant:
        await asyncio.sleep(1.0)  # well past the ttl: the keeper extended it
        assert await shaper.leases.count(connection_limit_key(PATH, None)) == 1
        assert not grant.lost
    assert await shaper.leases.count(connection_limit_key(PATH, None)) == 0


async def test_message_rates_slowest_first_stop_at_the_first_refusal() -> None:
    shaper = make_shaper()
    config = EgressPathConfig(
        max_message_rate=parse_throttle_spec("100/s"),
        additional_message_rate_throttles={"tenant": parse_throttle_spec("2/min")},
    )
    assert [name for name, _ in config.message_throttles()] == ["tenant", None]
    assert not (await shaper.check_message(PATH, config)).throttled
    assert not (await shaper.check_message(PATH, config)).throttled
    refused = await shaper.check_message(PATH, config)
    assert refused.throttled
    assert refused.retry_after == pytest.approx(30, abs=1)
    # The looser path rate was not charged for the refused message.
    path_rate = await shaper.throttle.check(message_rate_key(PATH, None), config.max_message_rate)  # type: ignore[arg-type]
    assert path_rate.remaining == 97


async def test_no_limits_means_no_waiting() -> None:
    config = dataclasses.replace(EgressPathConfig(), max_message_rate=None)
    result = await make_shaper().check_message(PATH, config, quantity=50)
    assert not result.throttled
