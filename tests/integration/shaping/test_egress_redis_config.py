"""`[redis]` as configured by an operator: a password from a mounted Secret file, and a
wrong one falling back to local limits instead of stopping mail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mta.config import ConfigError, RedisConfig
from mta.egress.limits import build_limits
from shaping.gate import ConnectionGrant, Refusal
from shaping.options import EgressPathConfig
from shaping.spec import parse_throttle_spec
from tests.support.redis_server import RedisServer

PATH = EgressPathConfig(connection_limit=1, max_message_rate=parse_throttle_spec("2/m"))


@pytest.fixture
def secured_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", password="s3cret")
    server.start()
    yield server
    server.kill()


async def test_password_file_authenticates_and_limits_are_shared(
    tmp_path: Path, secured_redis: RedisServer
) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    config = RedisConfig(url=secured_redis.url, password_file=secret)
    first, second = build_limits(config), build_limits(config)  # two nodes
    try:
        assert not (await first.shaper.check_message("site", PATH)).throttled
        assert not (await second.shaper.check_message("site", PATH)).throttled
        assert (await first.shaper.check_message("site", PATH)).throttled  # 2/m, shared
        grant = await first.shaper.acquire_connection("site", PATH)
        refused = await second.shaper.acquire_connection("site", PATH)
        assert isinstance(grant, ConnectionGrant) and isinstance(refused, Refusal)
        await grant.release()
        assert first.using_redis and second.using_redis
    finally:
        await first.close()
        await second.close()


async def test_wrong_password_falls_back_to_local_limits(
    tmp_path: Path, secured_redis: RedisServer
) -> None:
    limits = build_limits(RedisConfig(url=secured_redis.url, password="wrong"))
    try:
        result = await limits.shaper.check_message("site", PATH)
        assert not result.throttled  # mail goes on, on this node's share of the limit
        assert not limits.using_redis
        assert limits.health is not None and limits.health.fallbacks == 1
    finally:
        await limits.close()


def test_unreadable_password_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"redis\.password_file"):
        build_limits(RedisConfig(url="redis://127.0.0.1:1/0", password_file=tmp_path / "none"))
