"""TSA daemon access: trusted networks, bearer tokens from a file, 401 otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from shaping.tsa.daemon import TsaDaemon
from tests.support.net import unused_loopback_address
from tests.support.tsa import base_url, daemon_settings, wait_until

ENDPOINTS = (
    "/tsa/status",
    "/get_config_v1/shaping.toml",
    "/get_suspension_v1/suspended.json",
    "/get_bounce_v1/bounced.json",
)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[TsaDaemon]:
    tokens = tmp_path / "tokens"
    tokens.write_text("# tokens for the nodes\n\nsecret-one\n")
    settings = daemon_settings(tmp_path, tokens_file=tokens)
    server = TsaDaemon(settings)
    await server.start()
    yield server
    await server.stop()


def url_of(daemon: TsaDaemon) -> str:
    return base_url(daemon)  # 127.0.0.1; untrusted clients connect from other 127.0.0.x


async def status_of(session: aiohttp.ClientSession, url: str, **headers: str) -> int:
    async with session.get(url, headers=headers) as response:
        return response.status


async def test_untrusted_peers_need_a_valid_token(daemon: TsaDaemon) -> None:
    connector = aiohttp.TCPConnector(local_addr=(unused_loopback_address(), 0))
    async with aiohttp.ClientSession(connector=connector) as untrusted:
        for path in ENDPOINTS:
            assert await status_of(untrusted, url_of(daemon) + path) == 401
        url = url_of(daemon) + "/tsa/status"
        assert await status_of(untrusted, url, Authorization="Bearer wrong") == 401
        assert await status_of(untrusted, url, Authorization="Basic c2VjcmV0LW9uZQ==") == 401
        assert await status_of(untrusted, url, Authorization="Bearer secret-one") == 200
        async with untrusted.post(url_of(daemon) + "/publish_log_v1", data=b"{}") as response:
            assert response.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await untrusted.ws_connect(url_of(daemon) + "/subscribe_event_v1")
        assert refused.value.status == 401


async def test_trusted_networks_need_no_token(daemon: TsaDaemon) -> None:
    async with aiohttp.ClientSession() as trusted:  # from 127.0.0.1
        for path in ENDPOINTS:
            assert await status_of(trusted, url_of(daemon) + path) == 200


async def test_tokens_file_is_reloaded(daemon: TsaDaemon) -> None:
    assert daemon.settings.tokens_file is not None
    daemon.settings.tokens_file.write_text("secret-two\n")
    connector = aiohttp.TCPConnector(local_addr=(unused_loopback_address(), 0))
    async with aiohttp.ClientSession(connector=connector) as untrusted:
        url = url_of(daemon) + "/tsa/status"

        async def two_accepted() -> bool:
            return await status_of(untrusted, url, Authorization="Bearer secret-two") == 200

        await wait_until(two_accepted)
        assert await status_of(untrusted, url, Authorization="Bearer secret-one") == 401


async def test_trusted_networks_can_exclude_loopback(tmp_path: Path) -> None:
    settings = daemon_settings(tmp_path, trusted_networks=("10.0.0.0/8",))
    server = TsaDaemon(settings)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            assert await status_of(session, base_url(server) + "/tsa/status") == 401
    finally:
        await server.stop()
