"""The open-relay matrix from an untrusted address (127.0.0.2; relay_networks = 127.0.0.1/32)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.smtp.harness import ConnectClient, RawClient, StartServer
from tests.integration.smtp.smtp_sec_helpers import raw_login, tls_config

UNTRUSTED = "127.0.0.2"
TRUSTED_ONLY = ("127.0.0.1/32",)
# Every address form that has made open relays: plain remote, percent hack, bang path,
# source routes, quoted local parts with "@" or "%", address literals.
MATRIX = [
    b"<b@example.com>",
    b"<user%other.example@ours.test>",
    b"<a!b@ours.test>",
    b"<other.example!user@ours.test>",
    b"<@ours.test:user@other.example>",
    b"<@a.test,@ours.test:user@other.example>",
    b'<"user@other.example"@ours.test>',
    b'<"user%other.example"@ours.test>',
    b"<user@[192.0.2.1]>",
    b"<user@[IPv6:2001:db8::1]>",
]


async def _in_transaction(raw: RawClient) -> None:
    assert (await raw.reply()).startswith("220 ")
    assert (await raw.command(b"EHLO client.test\r\n")).startswith("250-")
    assert (await raw.command(b"MAIL FROM:<a@example.org>\r\n")).startswith("250 ")


@pytest.mark.parametrize("path", MATRIX, ids=[p.decode() for p in MATRIX])
async def test_untrusted_client_cannot_relay_any_address_form(
    start_server: StartServer, connect: ConnectClient, path: bytes
) -> None:
    harness = await start_server(relay_networks=TRUSTED_ONLY)
    raw = await connect(harness.port, source=UNTRUSTED)
    await _in_transaction(raw)
    assert await raw.command(b"RCPT TO:" + path + b"\r\n") == "550 5.7.1 Relaying denied"
    [event] = harness.events.rejections
    assert event["peer_address"] == UNTRUSTED


async def test_the_same_matrix_passes_from_a_relay_network(
    start_server: StartServer, connect: ConnectClient
) -> None:
    """The control: the refusals above come from the client's address, not the syntax."""
    harness = await start_server(relay_networks=TRUSTED_ONLY, max_recipients=len(MATRIX))
    raw = await connect(harness.port, source="127.0.0.1")
    await _in_transaction(raw)
    for path in MATRIX:
        assert (await raw.command(b"RCPT TO:" + path + b"\r\n")).startswith("250 "), path


async def test_the_same_matrix_passes_once_authenticated(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(
        relay_networks=TRUSTED_ONLY, max_recipients=len(MATRIX), **overrides
    )
    raw = await connect(harness.port, source=UNTRUSTED)
    await raw_login(raw, files)
    assert (await raw.command(b"MAIL FROM:<a@example.org>\r\n")).startswith("250 ")
    for path in MATRIX:
        assert (await raw.command(b"RCPT TO:" + path + b"\r\n")).startswith("250 "), path
