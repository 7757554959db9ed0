"""The rendered dev and prod overlays run: Redis with the rendered redis.conf and password, one
`mta tsa` per TSA replica from the rendered tsa.toml, and the node from the rendered mta.toml,
each with the files its pod would mount (paths moved under a temp dir, listeners on loopback
ports, routes to a local sink).  A message sent over SMTP, and in dev the KumoMTA demo's inject
request with the demo credentials, reaches the sink; the node uses Redis and publishes to the
TSAs with the configured secrets; every probe path answers 200."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import SinkFactory
from tests.k8s.k8s_local import (
    Process,
    add_user_secrets,
    loopback_listener,
    materialize,
    relocate,
    to_toml,
)
from tests.k8s.k8s_support import ROOT, Obj, container, get, node_toml, render
from tests.support.net import free_port
from tests.support.node import send
from tests.support.redis_server import redis_server_binary

GONE = "gone@example.net"  # the sink refuses it: a Bounce record, which nodes publish to TSAs


@pytest.fixture
def processes() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for proc in started:  # all at once: each shutdown takes a moment
        proc.stop()
    for proc in started:
        proc.wait()


class _Redis:
    """redis-server with the rendered redis.conf; the port and bind address moved to loopback."""

    def __init__(self, objs: list[Obj], root: Path) -> None:
        workload = get(objs, "Deployment", "mta-redis")
        env = materialize(objs, workload, root)
        self.password = env["REDIS_PASSWORD"]
        self.port = free_port()
        args = [a.replace("$(REDIS_PASSWORD)", self.password) for a in container(workload)["args"]]
        args[0] = str(root / args[0].lstrip("/"))
        extra = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(root)]
        with (root / "redis.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [redis_server_binary(), *args, *extra], cwd=root, stdout=log, stderr=log
            )

    def stop(self) -> None:
        self.proc.kill()

    def wait(self) -> None:
        self.proc.wait(10)


def _start_tsas(objs: list[Obj], tmp_path: Path, processes: list[Any]) -> list[str]:
    tsa = get(objs, "StatefulSet", "mta-tsa")
    urls = []
    for i in range(tsa["spec"]["replicas"]):
        root = tmp_path / f"mta-tsa-{i}"
        env = materialize(objs, tsa, root)
        config_path = root / container(tsa)["args"][2].lstrip("/")
        raw = relocate(tomllib.loads(config_path.read_text()), root)
        raw["tsa"]["listen"] = listen = loopback_listener()
        config_path.write_text(to_toml(raw))
        process = Process(tmp_path, f"tsa-{i}", ["tsa", "--config", str(config_path)], env)
        processes.append(process)
        process.wait_listening(listen)
        urls.append(f"http://{listen}")
    return urls


def _node_config(
    raw: dict[str, Any], root: Path, redis: _Redis, tsas: list[str], sink: str
) -> dict[str, Any]:
    raw = relocate(raw, root)
    raw["smtp"]["listen"] = [loopback_listener()]
    raw["http"]["listen"] = [loopback_listener()]
    raw["spool"]["min_free_bytes"] = 0  # the machine's free space is not the claim's
    raw["redis"]["url"] = f"redis://127.0.0.1:{redis.port}/0"
    raw["tsa"]["publish"] = tsas
    raw["tsa"]["subscribe"] = tsas[0]
    raw["routes"] = [{**route, "relay": sink} for route in raw.get("routes", [])] or [
        {"domains": ["*"], "relay": sink}
    ]
    return raw


@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/prod"])
async def test_the_rendered_cluster_delivers_locally(
    overlay: str, tmp_path: Path, sink_factory: SinkFactory, processes: list[Any]
) -> None:
    objs = render(overlay)
    workload, raw = node_toml(objs)
    add_user_secrets(objs, workload, raw)
    sink = await sink_factory(rcpt_replies={GONE: "550 5.1.1 no such user"})
    redis = _Redis(objs, tmp_path / "mta-redis")
    processes.append(redis)
    tsas = _start_tsas(objs, tmp_path, processes)
    root = tmp_path / "mta-0"
    env = materialize(objs, workload, root)
    config = _node_config(raw, root, redis, tsas, f"127.0.0.1:{sink.port}")
    config_path = root / "etc/mta/mta.toml"
    config_path.write_text(to_toml(config))
    node = Process(tmp_path, "mta-0", ["serve", "--config", str(config_path)], env)
    processes.append(node)
    node.wait_listening(config["smtp"]["listen"][0])
    base = f"http://{config['http']['listen'][0]}"
    async with aiohttp.ClientSession() as http:
        await _probes_answer(http, base, container(workload))
        await _smtp_delivers(config, sink, dkim="dkim" in raw)
        if overlay == "overlays/dev":
            await _demo_inject_delivers(http, base, sink)
        await _uses_redis(http, base)
        await send(_smtp_address(config), "app@example.com", [GONE], "Subject: gone\r\n\r\nx\r\n")
        await _tsas_got_records(http, tsas, _read(config["tsa"]["token_file"]))
    # MTA_NODE__NAME from the pod's name (Downward API) names the node in its records.
    assert {r["nodeid"] for r in node.records() if r["type"] == "Reception"} == {"mta-0"}


async def _probes_answer(http: aiohttp.ClientSession, base: str, spec: Obj) -> None:
    paths = {
        spec[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")
    }

    async def status(path: str) -> int:
        async with http.get(base + path) as response:
            return response.status

    for path in sorted(paths):
        for _ in range(200):  # /readyz answers 503 until spool recovery is done
            if await status(path) == 200:
                break
            await asyncio.sleep(0.05)  # poll
        assert await status(path) == 200, path


def _read(path: str) -> str:
    return Path(path).read_text().strip()


def _smtp_address(config: dict[str, Any]) -> tuple[str, int]:
    host, _, port = config["smtp"]["listen"][0].rpartition(":")
    return host, int(port)


async def _smtp_delivers(config: dict[str, Any], sink: Any, *, dkim: bool) -> None:
    message = "From: app@example.com\r\nTo: you@example.net\r\nSubject: k8s\r\n\r\nHello.\r\n"
    await send(_smtp_address(config), "app@example.com", ["you@example.net"], message)
    await sink.wait_for_messages(1, timeout=20)
    delivered = sink.messages[0]
    assert delivered.rcpt_tos == ["you@example.net"]
    assert (b"DKIM-Signature:" in delivered.data) is dkim
    if dkim:
        assert b"d=example.com" in delivered.data


async def _demo_inject_delivers(http: aiohttp.ClientSession, base: str, sink: Any) -> None:
    payload = json.loads((ROOT / "examples/sample_http_inject_payload.json").read_text())
    credentials = base64.b64encode(b"user1:PASSWORD").decode()  # the dev overlay's Secret
    headers = {"Authorization": f"Basic {credentials}"}
    async with http.post(base + "/api/inject/v1", json=payload, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["success_count"] == 1
    await sink.wait_for_messages(2, timeout=20)


async def _uses_redis(http: aiohttp.ClientSession, base: str) -> None:
    async def in_use() -> bool:
        async with http.get(base + "/metrics") as response:
            return "mta_shaping_redis_in_use 1.0" in await response.text()

    for _ in range(200):
        if await in_use():
            return
        await asyncio.sleep(0.05)  # poll
    raise AssertionError("the node never used Redis with the configured password")


async def _tsas_got_records(http: aiohttp.ClientSession, tsas: list[str], token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for url in tsas:
        for _ in range(300):
            async with http.get(url + "/tsa/status", headers=headers) as response:
                assert response.status == 200  # the token from the Secret is accepted
                if (await response.json())["records_processed"] > 0:
                    break
            await asyncio.sleep(0.05)  # poll
        else:
            raise AssertionError(f"{url} received no records")
