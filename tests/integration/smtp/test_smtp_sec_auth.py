"""SMTP AUTH: only under TLS, PLAIN and LOGIN, the failed-attempt budget, no secrets in logs."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import aiosmtplib
import pytest

from tests.integration.smtp.harness import ConnectClient, StartServer
from tests.integration.smtp.smtp_sec_helpers import (
    MESSAGE,
    PASSWORDS,
    plain_credentials,
    raw_starttls,
    tls_client,
    tls_config,
)


async def test_auth_before_tls_is_refused_with_538(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    _, overrides = tls_config(tmp_path)
    harness = await start_server(**overrides)
    raw = await connect(harness.port)
    assert (await raw.reply()).startswith("220 ")
    ehlo = await raw.command(b"EHLO client.test\r\n")
    assert "AUTH" not in ehlo and "STARTTLS" in ehlo  # not even offered in plaintext
    reply = await raw.command(b"AUTH PLAIN " + plain_credentials("alice", "alice-secret") + b"\r\n")
    assert reply == "538 5.7.11 Encryption required for requested authentication mechanism"
    reply = await raw.command(b"AUTH LOGIN\r\n")
    assert reply.startswith("538 5.7.11 ")


@pytest.mark.parametrize("mechanism", ["plain", "login"])
async def test_auth_plain_and_login_under_tls(
    start_server: StartServer, tmp_path: Path, mechanism: str
) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(**overrides)
    for user in ("alice", "bob"):  # plain and bcrypt secrets
        async with tls_client(harness, files) as smtp:
            await smtp.ehlo()
            assert smtp.esmtp_extensions["auth"] == "LOGIN PLAIN"
            login = smtp.auth_plain if mechanism == "plain" else smtp.auth_login
            code, _ = await login(user, PASSWORDS[user])
            assert code == 235
            await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
    assert [i.reception_protocol for i in harness.accept.inbounds] == ["ESMTPSA", "ESMTPSA"]


async def test_wrong_password_budget_ends_in_421(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(auth_max_failures=3, **overrides)
    raw = await connect(harness.port)
    await raw_starttls(raw, files)
    assert (await raw.command(b"EHLO client.test\r\n")).startswith("250-")
    wrong = b"AUTH PLAIN " + plain_credentials("alice", "guess") + b"\r\n"
    assert await raw.command(wrong) == "535 5.7.8 Authentication credentials invalid"
    assert await raw.command(b"AUTH PLAIN " + plain_credentials("nobody", "x") + b"\r\n") == (
        "535 5.7.8 Authentication credentials invalid"
    )
    reply = await raw.command(wrong)
    assert reply == "421 4.7.0 Too many failed authentication attempts, closing"
    assert await raw.at_eof()
    # The budget belongs to the IP, not the connection: the right password is refused too.
    again = await connect(harness.port)
    await raw_starttls(again, files)
    assert (await again.command(b"EHLO client.test\r\n")).startswith("250-")
    right = b"AUTH PLAIN " + plain_credentials("alice", "alice-secret") + b"\r\n"
    assert (await again.command(right)).startswith("421 4.7.0 ")
    # Another address has its own budget.
    other = await connect(harness.port, source="127.0.0.2")
    await raw_starttls(other, files)
    assert (await other.command(b"EHLO client.test\r\n")).startswith("250-")
    assert await other.command(right) == "235 2.7.0 Authentication successful"


async def test_auth_login_challenges_and_abort(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(**overrides)
    raw = await connect(harness.port)
    await raw_starttls(raw, files)
    assert (await raw.command(b"EHLO client.test\r\n")).startswith("250-")
    assert (await raw.command(b"AUTH LOGIN\r\n")).startswith("334 ")
    assert (await raw.command(base64.b64encode(b"alice") + b"\r\n")).startswith("334 ")
    reply = await raw.command(base64.b64encode(b"alice-secret") + b"\r\n")
    assert reply == "235 2.7.0 Authentication successful"
    assert (await raw.command(b"AUTH LOGIN\r\n")).startswith("503 ")  # already authenticated


async def test_authenticated_user_may_relay_from_an_untrusted_address(
    start_server: StartServer, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(relay_networks=("127.0.0.1/32",), **overrides)
    smtp = tls_client(harness, files)
    smtp.source_address = ("127.0.0.2", 0)
    async with smtp:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
        await smtp.rset()
        await smtp.login("alice", "alice-secret")
        errors, _ = await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
    assert errors == {}
    assert harness.accept.inbounds[0].peer_address == "127.0.0.2"


async def test_secrets_never_reach_the_log(
    start_server: StartServer,
    connect: ConnectClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(**overrides)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="mail.log")  # an earlier test may have raised it
    raw = await connect(harness.port)
    await raw_starttls(raw, files)
    assert (await raw.command(b"EHLO client.test\r\n")).startswith("250-")
    for password in ("wrong-one", "alice-secret"):
        blob = plain_credentials("alice", password)
        await raw.command(b"AUTH PLAIN " + blob + b"\r\n")
        assert blob.decode() not in caplog.text
        assert password not in caplog.text
    assert "AUTH PLAIN [redacted]" in caplog.text  # the line is logged, without its argument
