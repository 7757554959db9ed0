"""`[redis]` against Redis Cluster (three real redis-server nodes in cluster mode) and against
Redis over TLS (`rediss://` with the CA from `tls_ca_file`): limits are shared either way."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from mta.config import RedisConfig
from mta.egress.limits import NodeLimits, build_limits
from shaping.gate import ConnectionGrant, Refusal
from shaping.options import EgressPathConfig
from shaping.spec import parse_throttle_spec
from tests.support.net import free_port
from tests.support.redis_server import RedisServer

PATH = EgressPathConfig(connection_limit=1, max_message_rate=parse_throttle_spec("2/m"))
CLUSTER_ARGS = ("--cluster-enabled", "yes", "--cluster-node-timeout", "5000")


async def shared_by_two_nodes(config: RedisConfig) -> None:
    first, second = build_limits(config), build_limits(config)
    try:
        await check_shared(first, second)
    finally:
        await first.close()
        await second.close()


async def check_shared(first: NodeLimits, second: NodeLimits) -> None:
    for name in ("site-a", "site-b", "site-c"):  # keys in different hash slots
        assert not (await first.shaper.check_message(name, PATH)).throttled
        assert not (await second.shaper.check_message(name, PATH)).throttled
        assert (await first.shaper.check_message(name, PATH)).throttled
        grant = await first.shaper.acquire_connection(name, PATH)
        assert isinstance(grant, ConnectionGrant)
        assert isinstance(await second.shaper.acquire_connection(name, PATH), Refusal)
        await grant.release()
        assert isinstance(await second.shaper.acquire_connection(name, PATH), ConnectionGrant)
    assert first.using_redis and second.using_redis


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[list[RedisServer]]:
    # The cluster bus port defaults to port + 10000: name it, free ports may be higher.
    servers = [
        RedisServer(tmp_path / f"node{i}", extra_args=(*CLUSTER_ARGS, "--cluster-port", bus))
        for i, bus in enumerate(str(free_port()) for _ in range(3))
    ]
    try:
        for server in servers:
            server.start()
        addresses = [f"{s.host}:{s.port}" for s in servers]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0"],
            input=b"yes\n",
            capture_output=True,
            check=True,
            timeout=30,
        )
        yield servers
    finally:
        for server in servers:
            server.kill()


async def wait_cluster_ok(server: RedisServer) -> None:
    for _ in range(200):
        info = subprocess.run(
            ["redis-cli", "-h", server.host, "-p", str(server.port), "cluster", "info"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if "cluster_state:ok" in info:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the Redis cluster did not become ok")


async def test_redis_cluster_shares_limits(redis_cluster: list[RedisServer]) -> None:
    for server in redis_cluster:
        await wait_cluster_ok(server)
    await shared_by_two_nodes(RedisConfig(url=redis_cluster[0].url, cluster=True))


async def test_redis_over_tls_with_the_configured_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(files["ca"])
    cert.cert_chain_pems[0].write_to_path(files["cert"])
    cert.private_key_pem.write_to_path(files["key"])
    tls_port = free_port()
    server = RedisServer(
        tmp_path / "redis",
        extra_args=(
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(files["cert"]),
            "--tls-key-file", str(files["key"]),
            "--tls-ca-cert-file", str(files["ca"]),
            "--tls-auth-clients", "no",
        ),
    )  # fmt: skip
    server.start()  # the plain port answers the readiness PING; the test uses the TLS one
    try:
        url = f"rediss://127.0.0.1:{tls_port}/0"
        await shared_by_two_nodes(RedisConfig(url=url, tls_ca_file=files["ca"]))
        # Without the CA the certificate is not trusted: local limits, mail goes on.
        untrusting = build_limits(RedisConfig(url=url))
        try:
            assert not (await untrusting.shaper.check_message("x", PATH)).throttled
            assert not untrusting.using_redis
        finally:
            await untrusting.close()
    finally:
        server.kill()
