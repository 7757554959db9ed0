"""RFC 4954 4: AUTH during a mail transaction, and a second AUTH, are refused with 503 5.5.1."""

from __future__ import annotations

from pathlib import Path

from tests.integration.smtp.harness import ConnectClient, StartServer
from tests.integration.smtp.smtp_sec_helpers import (
    MESSAGE,
    PASSWORDS,
    plain_credentials,
    raw_login,
    raw_starttls,
    tls_config,
)

IN_TRANSACTION = "503 5.5.1 AUTH not permitted during a mail transaction"
RIGHT = b"AUTH PLAIN " + plain_credentials("alice", PASSWORDS["alice"]) + b"\r\n"
WRONG = b"AUTH PLAIN " + plain_credentials("alice", "guess") + b"\r\n"


async def test_auth_after_mail_is_refused_and_the_transaction_completes(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    # One failure left in the budget: a counted AUTH would end the session with 421.
    harness = await start_server(auth_max_failures=1, **overrides)
    raw = await connect(harness.port)
    await raw_starttls(raw, files)
    assert (await raw.command(b"EHLO client.test\r\n")).startswith("250-")
    assert (await raw.command(b"MAIL FROM:<a@example.org>\r\n")).startswith("250 ")
    assert await raw.command(RIGHT) == IN_TRANSACTION
    assert (await raw.command(b"RCPT TO:<b@example.com>\r\n")).startswith("250 ")
    assert await raw.command(WRONG) == IN_TRANSACTION  # not checked, so not a failure
    assert await raw.command(b"AUTH LOGIN\r\n") == IN_TRANSACTION
    assert (await raw.command(b"DATA\r\n")).startswith("354 ")
    assert (await raw.command(MESSAGE + b".\r\n")).startswith("250 ")
    [inbound] = harness.accept.inbounds
    assert (inbound.sender, inbound.recipients) == ("a@example.org", ("b@example.com",))
    assert inbound.reception_protocol == "ESMTPS"  # the refused AUTHs did not authenticate
    # The transaction is over: AUTH is allowed again and the budget is still whole.
    assert await raw.command(RIGHT) == "235 2.7.0 Authentication successful"


async def test_auth_after_rset_is_allowed(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(**overrides)
    raw = await connect(harness.port)
    await raw_starttls(raw, files)
    assert (await raw.command(b"EHLO client.test\r\n")).startswith("250-")
    assert (await raw.command(b"MAIL FROM:<a@example.org>\r\n")).startswith("250 ")
    assert await raw.command(RIGHT) == IN_TRANSACTION
    assert (await raw.command(b"RSET\r\n")).startswith("250 ")
    assert await raw.command(RIGHT) == "235 2.7.0 Authentication successful"
    assert (await raw.command(b"MAIL FROM:<a@example.org>\r\n")).startswith("250 ")
    assert (await raw.command(b"RCPT TO:<b@example.com>\r\n")).startswith("250 ")
    assert (await raw.command(b"DATA\r\n")).startswith("354 ")
    assert (await raw.command(MESSAGE + b".\r\n")).startswith("250 ")
    assert [i.reception_protocol for i in harness.accept.inbounds] == ["ESMTPSA"]


async def test_second_auth_is_refused_with_503(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(**overrides)
    raw = await connect(harness.port)
    await raw_login(raw, files)
    again = b"AUTH PLAIN " + plain_credentials("bob", PASSWORDS["bob"]) + b"\r\n"
    assert await raw.command(again) == "503 5.5.1 Already authenticated"
    assert (await raw.command(b"MAIL FROM:<a@example.org>\r\n")).startswith("250 ")
    assert (await raw.command(b"RCPT TO:<b@example.com>\r\n")).startswith("250 ")
    assert (await raw.command(b"DATA\r\n")).startswith("354 ")
    assert (await raw.command(MESSAGE + b".\r\n")).startswith("250 ")
    [inbound] = harness.accept.inbounds
    assert inbound.reception_protocol == "ESMTPSA"
