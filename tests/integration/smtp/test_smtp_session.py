"""Normal SMTP sessions: greeting, extensions, relay control, headers, accept-path outcomes."""

from __future__ import annotations

import re

import aiosmtplib
import pytest

from mta.replies import S451_SPOOL_UNAVAILABLE, PermanentError, Reply, TransientError
from tests.integration.smtp.harness import HOSTNAME, ConnectClient, StartServer

MESSAGE = b"From: a@example.org\r\nSubject: hello\r\n\r\nHello.\r\n..leading dot\r\n"


def client(port: int) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, local_hostname="client.test", start_tls=False, timeout=5
    )


async def test_greeting_and_ehlo_extensions(start_server: StartServer) -> None:
    harness = await start_server(max_message_bytes=12345)
    async with client(harness.port) as smtp:
        code, _ = await smtp.ehlo()
        assert code == 250
        assert smtp.esmtp_extensions == {
            "size": "12345",
            "8bitmime": "",
            "pipelining": "",
            "enhancedstatuscodes": "",
            "smtputf8": "",
        }


async def test_raw_greeting_names_the_host_and_smtputf8_can_be_off(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server(smtputf8=False)
    raw = await connect(harness.port)
    assert await raw.reply() == f"220 {HOSTNAME} ESMTP"
    ehlo = await raw.command(b"EHLO client.test\r\n")
    assert ehlo.splitlines() == [
        f"250-{HOSTNAME}",
        "250-SIZE 20971520",
        "250-8BITMIME",
        "250-PIPELINING",
        "250 ENHANCEDSTATUSCODES",
    ]


async def test_message_is_accepted_with_trace_headers(start_server: StartServer) -> None:
    harness = await start_server()
    async with client(harness.port) as smtp:
        errors, reply = await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
    assert errors == {}
    assert reply == "2.0.0 OK queued as msg1"
    [inbound] = harness.accept.inbounds
    assert inbound.sender == "a@example.org"
    assert inbound.recipients == ("b@example.com",)
    assert inbound.reception_protocol == "ESMTP"
    assert inbound.peer_address == "127.0.0.1"
    assert inbound.peer_name == "client.test"
    assert inbound.smtputf8 is False
    received, _, rest = inbound.data.partition(b"\r\n\t")
    assert received == b"Received: from client.test (127.0.0.1 [127.0.0.1])"
    assert re.match(rb"by mx\.test \(mta\) with ESMTP id \w+;\r\n\t\w{3}, ", rest)
    headers, _, body = inbound.data.partition(b"\r\n\r\n")
    assert re.search(rb"\r\nMessage-ID: <\w+@mx\.test>\r\n", headers)
    assert re.search(rb"\r\nDate: \w{3}, \d+ \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n", headers)
    assert headers.endswith(b"\r\nFrom: a@example.org\r\nSubject: hello")
    assert body == b"Hello.\r\n..leading dot\r\n"  # stuffed by the client, unstuffed once


async def test_existing_message_id_and_date_are_kept(start_server: StartServer) -> None:
    harness = await start_server()
    message = (
        b"message-id: <own@x>\r\nDATE: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nMessage-ID: no\r\n"
    )
    async with client(harness.port) as smtp:
        await smtp.sendmail("a@example.org", ["b@example.com"], message)
    [inbound] = harness.accept.inbounds
    assert inbound.data.lower().count(b"message-id:") == 2  # the original and the body line
    assert inbound.data.lower().count(b"date:") == 1
    assert inbound.data.endswith(message)


async def test_null_sender_and_pipelined_recipients(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server()
    raw = await connect(harness.port)
    await raw.reply()
    await raw.command(b"EHLO client.test\r\n")
    await raw.send(
        b"MAIL FROM:<>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n"
    )
    assert [await raw.reply() for _ in range(4)] == [
        "250 2.1.0 Sender OK",
        "250 2.1.5 Recipient OK",
        "250 2.1.5 Recipient OK",
        "354 End data with <CR><LF>.<CR><LF>",
    ]
    assert await raw.command(b"Subject: bounce\r\n\r\nx\r\n.\r\n") == "250 2.0.0 OK queued as msg1"
    assert await raw.command(b"QUIT\r\n") == "221 2.0.0 Bye"
    [inbound] = harness.accept.inbounds
    assert inbound.sender == ""
    assert inbound.recipients == ("b@example.com", "c@example.net")


async def test_relay_allowed_only_from_relay_networks(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server(relay_networks=("127.0.0.2/32",))
    denied = await connect(harness.port, source="127.0.0.1")
    allowed = await connect(harness.port, source="127.0.0.2")
    for raw in (denied, allowed):
        await raw.reply()
        await raw.command(b"EHLO client.test\r\n")
        assert await raw.command(b"MAIL FROM:<a@example.org>\r\n") == "250 2.1.0 Sender OK"
    assert await denied.command(b"RCPT TO:<b@example.com>\r\n") == "550 5.7.1 Relaying denied"
    assert await allowed.command(b"RCPT TO:<b@example.com>\r\n") == "250 2.1.5 Recipient OK"
    assert harness.events.rejections == [
        {
            "sender": "a@example.org",
            "recipient": "b@example.com",
            "reply": Reply(550, "5.7.1", "Relaying denied"),
            "command": "RCPT TO:<b@example.com>",
            "peer_address": "127.0.0.1",
        }
    ]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (b"MAIL FROM:<no-domain>\r\n", "553 5.1.3 Bad address syntax"),
        (b"MAIL FROM:<a@-example.org>\r\n", "553 5.1.3 Bad address syntax"),
        (b"MAIL FROM:<a@>\r\n", "553 5.1.3 Error: malformed address"),  # aiosmtpd's parser
        (b"MAIL FROM:<" + b"x" * 250 + b"@example.org>\r\n", "501 5.1.3 Path too long"),
        ("MAIL FROM:<ü@example.org>\r\n".encode(), "553 5.6.7 Non-ASCII address requires SMTPUTF8"),
        (
            b"MAIL FROM:<a@example.org> BODY=BINARY\r\n",
            "501 5.5.4 Error: BODY can only be one of 7BIT, 8BITMIME",
        ),
    ],
)
async def test_bad_sender_is_refused_and_logged(
    start_server: StartServer, connect: ConnectClient, command: bytes, expected: str
) -> None:
    harness = await start_server()
    raw = await connect(harness.port)
    await raw.reply()
    await raw.command(b"EHLO client.test\r\n")
    assert await raw.command(command) == expected
    [event] = harness.events.rejections
    assert str(event["reply"]) == expected
    assert event["command"] == command.decode().strip()
    assert event["recipient"] is None


async def test_utf8_addresses_with_smtputf8(start_server: StartServer) -> None:
    harness = await start_server()
    async with client(harness.port) as smtp:
        await smtp.sendmail(
            "ü@example.org",
            ["ö@bücher.example"],
            b"Subject: x\r\n\r\nx\r\n",
            mail_options=["SMTPUTF8"],
        )
    [inbound] = harness.accept.inbounds
    assert (inbound.sender, inbound.recipients) == ("ü@example.org", ("ö@bücher.example",))
    assert inbound.smtputf8 is True
    assert inbound.reception_protocol == "UTF8SMTP"


async def test_unhealthy_accept_path_refuses_at_mail(start_server: StartServer) -> None:
    harness = await start_server()
    harness.accept.unhealthy = "disk full"
    async with client(harness.port) as smtp:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
    assert (refused.value.code, refused.value.message) == (452, "4.3.1 Insufficient system storage")
    assert harness.accept.inbounds == []
    assert [str(e["reply"]) for e in harness.events.rejections] == [
        "452 4.3.1 Insufficient system storage"
    ]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (TransientError(S451_SPOOL_UNAVAILABLE), "451 4.3.0 Spool unavailable, try again later"),
        (OSError("disk on fire"), "451 4.3.0 Local error in processing"),
        (PermanentError(Reply(554, "5.7.0", "policy")), "554 5.7.0 policy"),
    ],
)
async def test_accept_failure_becomes_its_reply(
    start_server: StartServer,
    connect: ConnectClient,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    expected: str,
) -> None:
    harness = await start_server()
    harness.accept.error = error
    raw = await connect(harness.port)
    await raw.start_mail()
    assert await raw.command(MESSAGE + b".\r\n") == expected
    assert await raw.command(b"NOOP\r\n") == "250 2.0.0 OK"  # the session carries on
    [event] = harness.events.rejections
    assert (event["command"], event["sender"], str(event["reply"])) == (
        "DATA",
        "a@example.org",
        expected,
    )
    if isinstance(error, OSError):
        assert "disk on fire" in caplog.text  # our own trouble is logged with its traceback


async def test_sequence_errors_have_enhanced_codes(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server()
    raw = await connect(harness.port)
    await raw.reply()
    assert await raw.command(b"MAIL FROM:<a@example.org>\r\n") == "503 5.5.1 Error: send HELO first"
    await raw.command(b"HELO client.test\r\n")
    assert await raw.command(b"RCPT TO:<b@example.com>\r\n") == "503 5.5.1 Error: need MAIL command"
    assert await raw.command(b"DATA\r\n") == "503 5.5.1 Error: need RCPT command"
    assert await raw.command(b"FOO\r\n") == "500 5.5.1 Command not recognized"
    assert await raw.command(b"RSET\r\n") == "250 2.0.0 OK"
    assert [e["command"] for e in harness.events.rejections] == [
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<b@example.com>",
        "DATA",
    ]


async def test_commands_pipelined_after_the_data_are_read_as_commands(
    start_server: StartServer, connect: ConnectClient
) -> None:
    """DATA is read in chunks: what followed the end of data goes back to the command reader."""
    harness = await start_server()
    raw = await connect(harness.port)
    await raw.start_mail()
    await raw.send(b"Subject: one\r\n\r\nx\r\n.\r\nRSET\r\nMAIL FROM:<c@example.org>\r\n")
    assert [await raw.reply() for _ in range(3)] == [
        "250 2.0.0 OK queued as msg1",
        "250 2.0.0 OK",
        "250 2.1.0 Sender OK",
    ]
    assert await raw.command(b"RCPT TO:<d@example.com>\r\n") == "250 2.1.5 Recipient OK"
    assert harness.accept.inbounds[0].data.endswith(b"Subject: one\r\n\r\nx\r\n")


async def test_large_messages_pipelined_back_to_back(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server()
    raw = await connect(harness.port)
    await raw.reply()
    await raw.command(b"EHLO client.test\r\n")
    bodies = [b"Subject: %d\r\n\r\n" % n + b"..%d line\r\n" % n * 20_000 for n in range(2)]
    envelope = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
    await raw.send(b"".join(envelope + body + b".\r\n" for body in bodies) + b"QUIT\r\n")
    replies = [await raw.reply() for _ in range(9)]
    assert replies[3::4] == ["250 2.0.0 OK queued as msg1", "250 2.0.0 OK queued as msg2"]
    assert replies[-1] == "221 2.0.0 Bye"
    for inbound, body in zip(harness.accept.inbounds, bodies, strict=True):
        assert inbound.data.endswith(body.replace(b"\r\n.", b"\r\n"))


async def test_client_gone_inside_data_accepts_nothing(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server()
    raw = await connect(harness.port)
    await raw.start_mail()
    await raw.send(b"Subject: cut off\r\n\r\nno end\r\n.")
    raw.writer.write_eof()
    assert await raw.at_eof()  # closed without a reply
    assert harness.accept.inbounds == []
