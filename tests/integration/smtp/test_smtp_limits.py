"""Limits with their RFC replies: recipients, size, line lengths, idle time, connections, errors."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.smtp.harness import ConnectClient, RawClient, StartServer

BODY = b"Subject: limits\r\n\r\n"


async def ehlo(raw: RawClient) -> None:
    assert (await raw.reply()).startswith("220 ")
    assert (await raw.command(b"EHLO client.test\r\n")).startswith("250-")


async def test_recipients_past_the_limit_get_452(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server(max_recipients=2)
    raw = await connect(harness.port)
    await ehlo(raw)
    await raw.command(b"MAIL FROM:<a@example.org>\r\n")
    replies = [await raw.command(b"RCPT TO:<r%d@example.com>\r\n" % i) for i in range(3)]
    assert replies[2] == "452 4.5.3 Too many recipients"
    assert await raw.command(b"DATA\r\n") == "354 End data with <CR><LF>.<CR><LF>"
    assert (await raw.command(BODY + b".\r\n")).startswith("250 2.0.0 OK queued as ")
    assert harness.accept.inbounds[0].recipients == ("r0@example.com", "r1@example.com")
    [event] = harness.events.rejections
    assert (event["recipient"], str(event["reply"])) == (
        "r2@example.com",
        "452 4.5.3 Too many recipients",
    )


async def test_declared_size_over_the_limit_is_refused_at_mail(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server(max_message_bytes=1000)
    raw = await connect(harness.port)
    await ehlo(raw)
    too_big = await raw.command(b"MAIL FROM:<a@example.org> SIZE=1001\r\n")
    assert too_big == "552 5.3.4 Message size exceeds fixed maximum message size"
    assert await raw.command(b"MAIL FROM:<a@example.org> SIZE=1000\r\n") == "250 2.1.0 Sender OK"
    assert [e["command"] for e in harness.events.rejections] == [
        "MAIL FROM:<a@example.org> SIZE=1001"
    ]


async def test_actual_size_over_the_limit_is_refused_after_data(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server(max_message_bytes=1000)
    raw = await connect(harness.port)
    await raw.start_mail()
    lines = b"x" * 98 + b"\r\n"
    reply = await raw.command(BODY + lines * 100 + b".\r\n")
    assert reply == "552 5.3.4 Message size exceeds fixed maximum message size"
    assert harness.accept.inbounds == []
    assert await raw.command(b"NOOP\r\n") == "250 2.0.0 OK"  # the data did not leak into commands
    assert [e["command"] for e in harness.events.rejections] == ["DATA"]


@pytest.mark.parametrize(("octets", "accepted"), [(512, True), (513, False), (5000, False)])
async def test_command_line_limit_is_512_octets(
    start_server: StartServer, connect: ConnectClient, octets: int, accepted: bool
) -> None:
    harness = await start_server()
    raw = await connect(harness.port)
    await ehlo(raw)
    line = b"NOOP " + b"a" * (octets - 7) + b"\r\n"
    assert len(line) == octets
    reply = await raw.command(line)
    assert reply == ("250 2.0.0 OK" if accepted else "500 5.5.2 Line too long")
    assert await raw.command(b"NOOP\r\n") == "250 2.0.0 OK"


@pytest.mark.parametrize(
    ("line", "accepted"),
    [
        (b"x" * 998 + b"\r\n", True),  # 1000 octets with CRLF
        (b".." + b"x" * 997 + b"\r\n", True),  # 1000 once the transparency dot is removed
        (b"x" * 999 + b"\r\n", False),  # 1001 octets
        (b"x" * 100_000 + b"\r\n", False),  # read in pieces, none of it kept
    ],
)
async def test_text_line_limit_is_1000_octets(
    start_server: StartServer, connect: ConnectClient, line: bytes, accepted: bool
) -> None:
    harness = await start_server()
    raw = await connect(harness.port)
    await raw.start_mail()
    reply = await raw.command(BODY + line + b"last\r\n.\r\n")
    if accepted:
        assert reply == "250 2.0.0 OK queued as msg1"
        assert harness.accept.inbounds[0].data.endswith(
            BODY + line.removeprefix(b".") + b"last\r\n"
        )
    else:
        assert reply == "500 5.5.2 Line too long"
        assert harness.accept.inbounds == []
    assert await raw.command(b"NOOP\r\n") == "250 2.0.0 OK"


async def test_idle_timeout_says_421_and_closes(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server(idle_timeout=0.3)
    raw = await connect(harness.port)
    await ehlo(raw)
    assert await raw.reply() == "421 4.4.2 Idle timeout, closing connection"
    assert await raw.at_eof()


async def test_data_timeout_applies_between_pieces_of_data(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server(idle_timeout=0.2, data_timeout=1.0)
    raw = await connect(harness.port)
    await raw.start_mail()
    for _ in range(3):  # 1.05 s of DATA in all, longer than either timeout
        await asyncio.sleep(0.35)
        await raw.send(b"more\r\n")
    assert await raw.command(b".\r\n") == "250 2.0.0 OK queued as msg1"
    assert await raw.reply() == "421 4.4.2 Idle timeout, closing connection"


async def test_connections_over_the_limit_are_greeted_with_421(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server(max_connections=2)
    first, second = await connect(harness.port), await connect(harness.port)
    assert (await first.reply()).startswith("220 ")
    assert (await second.reply()).startswith("220 ")
    third = await connect(harness.port)
    assert await third.reply() == "421 4.7.0 Too many connections, try again later"
    assert await third.at_eof()
    assert harness.server.active_sessions == 2
    assert await first.command(b"QUIT\r\n") == "221 2.0.0 Bye"
    assert await first.at_eof()  # the server forgets a session before its socket closes
    assert harness.server.active_sessions == 1
    fourth = await connect(harness.port)
    assert (await fourth.reply()).startswith("220 ")


async def test_connections_per_client_ip_are_limited(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server(max_connections_per_ip=1)
    first = await connect(harness.port, source="127.0.0.1")
    assert (await first.reply()).startswith("220 ")
    again = await connect(harness.port, source="127.0.0.1")
    assert await again.reply() == "421 4.7.0 Too many connections, try again later"
    other = await connect(harness.port, source="127.0.0.2")
    assert (await other.reply()).startswith("220 ")


async def test_too_many_command_errors_end_the_session(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server(max_errors=3)
    raw = await connect(harness.port)
    await ehlo(raw)
    assert await raw.command(b"FOO\r\n") == "500 5.5.1 Command not recognized"
    assert await raw.command(b"RCPT TO:<b@example.com>\r\n") == "503 5.5.1 Error: need MAIL command"
    assert await raw.command(b"MAIL FROM:\r\n") == (
        "501 5.5.4 Syntax: MAIL FROM: <address> [SP <mail-parameters>]"
    )
    assert await raw.command(b"NOOP\r\n") == "250 2.0.0 OK"  # not an error
    assert await raw.command(b"BAR\r\n") == "421 4.7.0 Too many errors, closing connection"
    assert await raw.at_eof()
