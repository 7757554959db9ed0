"""HELP answers with aiosmtpd's syntax texts, which reach it through our command runner."""

from __future__ import annotations

from tests.integration.smtp.harness import ConnectClient, StartServer


async def test_help_lists_commands_and_gives_each_ones_syntax(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server()
    raw = await connect(harness.port)
    await raw.reply()
    await raw.command(b"EHLO client.test\r\n")

    listing = await raw.command(b"HELP\r\n")
    mail = await raw.command(b"HELP MAIL\r\n")
    rcpt = await raw.command(b"HELP RCPT\r\n")
    unknown = await raw.command(b"HELP NOSUCH\r\n")

    assert listing.startswith("250 ") and "MAIL" in listing and "RCPT" in listing
    assert mail.startswith("250 ") and "MAIL FROM: <address>" in mail
    assert rcpt.startswith("250 ") and "RCPT TO: <address>" in rcpt
    assert unknown.startswith("501 ")
