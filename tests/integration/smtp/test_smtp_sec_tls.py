"""Inbound TLS: STARTTLS with a test CA, certificate reload, implicit TLS, the injection probe."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

import aiosmtplib
import trustme

from tests.integration.smtp.harness import (
    TIMEOUT,
    ConnectClient,
    RawClient,
    StartServer,
)
from tests.integration.smtp.smtp_sec_helpers import (
    MESSAGE,
    TlsFiles,
    raw_starttls,
    tls_client,
    tls_config,
    upgrade,
)


async def test_starttls_with_a_certificate_from_files(
    start_server: StartServer, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(**overrides)
    async with tls_client(harness, files) as smtp:
        errors, _ = await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
        assert errors == {}
        assert "auth" in smtp.esmtp_extensions  # offered once TLS is on
        assert "starttls" not in smtp.esmtp_extensions
    [inbound] = harness.accept.inbounds
    assert inbound.reception_protocol == "ESMTPS"
    assert b"with ESMTPS id" in inbound.data


async def test_the_server_context_floors_tls_at_1_2(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(**overrides)
    context = harness.server._settings.tls_context
    assert context is not None and context.minimum_version == ssl.TLSVersion.TLSv1_2
    raw = await connect(harness.port)
    await raw_starttls(raw, files)
    assert raw.writer.get_extra_info("ssl_object").version() in {"TLSv1.2", "TLSv1.3"}


async def test_plaintext_pipelined_after_starttls_is_discarded(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    """CVE-2024-34083 class: `STARTTLS\\r\\nEHLO x\\r\\n` in one write; the EHLO never runs."""
    files, overrides = tls_config(tmp_path)
    harness = await start_server(**overrides)
    raw = await connect(harness.port)
    assert (await raw.reply()).startswith("220 ")
    assert (await raw.command(b"EHLO client.test\r\n")).startswith("250-")
    assert (await raw.command(b"STARTTLS\r\nEHLO x\r\n")).startswith("220 ")
    await upgrade(raw, files)  # a plaintext 250 sent in between would break the handshake
    # Had the EHLO run (before or after the handshake), this MAIL would be accepted.
    reply = await raw.command(b"MAIL FROM:<a@example.org>\r\n")
    assert reply == "503 5.5.1 Error: send HELO first"
    ehlo = await raw.command(b"EHLO client.test\r\n")
    assert "250-AUTH LOGIN PLAIN" in ehlo.splitlines() or "250 AUTH LOGIN PLAIN" in ehlo
    assert "STARTTLS" not in ehlo


async def test_starttls_resets_the_transaction(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(**overrides)
    raw = await connect(harness.port)
    assert (await raw.reply()).startswith("220 ")
    assert (await raw.command(b"EHLO client.test\r\n")).startswith("250-")
    assert (await raw.command(b"MAIL FROM:<a@example.org>\r\n")).startswith("250 ")
    assert (await raw.command(b"STARTTLS\r\n")).startswith("220 ")
    await upgrade(raw, files)
    assert (await raw.command(b"EHLO client.test\r\n")).startswith("250-")
    assert await raw.command(b"RCPT TO:<b@example.com>\r\n") == "503 5.5.1 Error: need MAIL command"


async def test_changed_certificate_files_are_used_for_new_connections(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(**overrides)
    first = await connect(harness.port)
    await raw_starttls(first, files)
    files.reissue(trustme.CA())  # a rotated Secret: a new CA, new files
    async with asyncio.timeout(TIMEOUT):  # checked at most once a second: poll, bounded
        while not await _handshake_ok(harness.port, files):  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.1)
    assert (await first.command(b"EHLO still.test\r\n")).startswith("250-")  # old one lives on


async def _handshake_ok(port: int, files: TlsFiles) -> bool:
    raw = await RawClient.connect(port)
    try:
        await raw_starttls(raw, files)
    except ssl.SSLCertVerificationError:
        return False
    finally:
        with contextlib.suppress(Exception):  # a failed handshake fails the close too
            await raw.close()
    return True


async def test_a_broken_new_pair_keeps_the_old_certificate(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(**overrides)
    files.key_file.write_text("not a key\n")
    for _ in range(3):
        raw = await connect(harness.port)
        await raw_starttls(raw, files)  # still the original, valid pair


async def test_implicit_tls_listener(start_server: StartServer, tmp_path: Path) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(implicit_tls_listen=("127.0.0.1:0",), **overrides)
    [(_, port)] = harness.server.listener_addresses("tls")
    smtp = aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=port,
        local_hostname="client.test",
        use_tls=True,
        tls_context=files.client_context(),
        timeout=TIMEOUT,
    )
    async with smtp:
        await smtp.ehlo()
        assert "starttls" not in smtp.esmtp_extensions
        assert "auth" in smtp.esmtp_extensions
        await smtp.login("alice", "alice-secret")
        errors, _ = await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
        assert errors == {}
    [inbound] = harness.accept.inbounds
    assert inbound.reception_protocol == "ESMTPSA"
