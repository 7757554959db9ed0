"""The server binds every `listen` address (port 0 = any free port) and closes them on stop;
::1 is trusted by default like 127.0.0.1, so admin paths answer on both."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from tests.integration.http.test_http_support import serve_http


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_every_listen_address_serves_until_stop() -> None:
    async with serve_http(listen=("127.0.0.1:0", "[::1]:0")) as served:
        addresses = served.server.addresses
        urls = [f"http://{host}:{port}" for host, port in addresses]
        urls = [url.replace("::1", "[::1]") for url in urls]
        async with aiohttp.ClientSession() as session:
            for url in urls:
                async with session.get(url + "/metrics") as response:
                    assert response.status == 200

    assert sorted(host for host, _ in addresses) == ["127.0.0.1", "::1"]
    assert all(port > 0 for _, port in addresses)
    assert served.server.addresses == []
    async with aiohttp.ClientSession() as session:
        for url in urls:
            with pytest.raises(aiohttp.ClientConnectionError):
                await session.get(url + "/livez")
