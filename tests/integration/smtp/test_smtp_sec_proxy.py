"""PROXY protocol v1/v2 listeners: the real client address is used; only proxies may send it."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from tests.integration.smtp.harness import ConnectClient, Harness, RawClient, StartServer
from tests.integration.smtp.smtp_sec_helpers import (
    MESSAGE,
    PROXY_V2_SIGNATURE,
    proxy_v1,
    proxy_v2,
    wait_for,
)

PROXY_SETTINGS: dict[str, Any] = {
    "proxy_protocol_listen": ("127.0.0.1:0",),
    "proxy_networks": ("127.0.0.1/32",),
    "relay_networks": ("198.51.100.0/24",),  # clients behind the proxy, not the proxy itself
}
HEADERS = {"v1": proxy_v1, "v2": proxy_v2}


async def _proxy_port(start_server: StartServer, **overrides: Any) -> tuple[Harness, int]:
    harness = await start_server(**{**PROXY_SETTINGS, **overrides})
    [(_, port)] = harness.server.listener_addresses("proxy")
    return harness, port


async def _send_one(raw: RawClient, recipient: bytes = b"<b@example.com>") -> str:
    assert (await raw.reply()).startswith("220 ")
    assert (await raw.command(b"EHLO client.test\r\n")).startswith("250-")
    assert (await raw.command(b"MAIL FROM:<a@example.org>\r\n")).startswith("250 ")
    reply = await raw.command(b"RCPT TO:" + recipient + b"\r\n")
    if not reply.startswith("250 "):
        return reply
    assert (await raw.command(b"DATA\r\n")).startswith("354 ")
    return await raw.command(MESSAGE + b".\r\n")


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_the_real_client_address_decides_relay_and_trace(
    start_server: StartServer, connect: ConnectClient, version: str
) -> None:
    harness, port = await _proxy_port(start_server)
    allowed = await connect(port)
    await allowed.send(HEADERS[version]("198.51.100.9"))
    assert (await _send_one(allowed)).startswith("250 ")
    [inbound] = harness.accept.inbounds
    assert inbound.peer_address == "198.51.100.9"
    assert b"[198.51.100.9]" in inbound.data.split(b"\r\n\r\n")[0]
    denied = await connect(port)  # the proxy (127.0.0.1) is not a relay network: the client is
    await denied.send(HEADERS[version]("203.0.113.7"))
    assert await _send_one(denied) == "550 5.7.1 Relaying denied"
    assert harness.events.rejections[-1]["peer_address"] == "203.0.113.7"


async def test_a_header_from_outside_the_proxy_networks_is_refused(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness, port = await _proxy_port(start_server)
    spoofer = await connect(port, source="127.0.0.2")
    # Refused before a header is read: whatever it would claim (a relay client) is never seen.
    assert await spoofer.reply() == "554 5.7.1 Connection refused: not a trusted proxy"
    assert await spoofer.at_eof()
    late = await connect(port, source="127.0.0.2")
    with contextlib.suppress(ConnectionError):  # the server may close before this is sent
        await late.send(proxy_v1("198.51.100.9") + b"EHLO client.test\r\n")
    assert (await late.reply()).startswith("554 5.7.1 ")
    assert harness.accept.inbounds == []


@pytest.mark.parametrize(
    "header",
    [
        b"HELO client.test\r\n",  # no header at all
        b"PROXY TCP4 198.51.100.9\r\n",  # truncated v1
        b"PROXY TCP4 198.51.100.999 127.0.0.1 1 25\r\n",  # garbage address
        b"PROXY TCP4 198.51.100.9 127.0.0.1 40000 25 extra\r\n",
        b"PROXY " + b"X" * 200 + b"\r\n",  # longer than v1 allows (107 octets)
        PROXY_V2_SIGNATURE + b"\x21\x11\x00\x04\x01\x02\x03\x04",  # v2 address cut short
        PROXY_V2_SIGNATURE + b"\x31\x11\x00\x0c" + b"\x00" * 12,  # v2 with a wrong version
        b"\x00\xff" * 10,
    ],
    ids=["none", "v1-short", "v1-bad-ip", "v1-extra", "v1-long", "v2-short", "v2-ver", "junk"],
)
async def test_bad_headers_close_the_connection_without_a_greeting(
    start_server: StartServer, connect: ConnectClient, header: bytes
) -> None:
    harness, port = await _proxy_port(start_server)
    raw = await connect(port)
    await raw.send(header)
    assert await raw.at_eof()
    await wait_for(lambda: harness.server.active_sessions == 0, "the session to be released")


async def test_a_header_cut_off_by_the_peer_closing(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness, port = await _proxy_port(start_server)
    raw = await connect(port)
    await raw.send(b"PROXY TCP4 198.5")
    raw.writer.write_eof()
    assert await raw.at_eof()
    await wait_for(lambda: harness.server.active_sessions == 0, "the session to be released")


async def test_v2_local_health_check_uses_the_proxy_address(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness, port = await _proxy_port(start_server)
    raw = await connect(port)
    await raw.send(proxy_v2("198.51.100.9", command=0))  # LOCAL: the address is ignored
    assert await _send_one(raw) == "550 5.7.1 Relaying denied"
    assert harness.events.rejections[-1]["peer_address"] == "127.0.0.1"


async def test_per_ip_connection_limits_count_real_clients(
    start_server: StartServer, connect: ConnectClient
) -> None:
    _, port = await _proxy_port(start_server, max_connections_per_ip=1)
    first = await connect(port)
    await first.send(proxy_v1("198.51.100.1"))
    assert (await first.reply()).startswith("220 ")
    second = await connect(port)  # same proxy, another client: admitted
    await second.send(proxy_v1("198.51.100.2"))
    assert (await second.reply()).startswith("220 ")
    third = await connect(port)  # the first client again: over its limit
    await third.send(proxy_v1("198.51.100.1", 40001))
    assert await third.reply() == "421 4.7.0 Too many connections, try again later"
