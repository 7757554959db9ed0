"""SMTP smuggling: only CRLF.CRLF ends DATA, and bare CR/LF are rejected or normalized.

Each case sends, in one write, a message whose body holds an alternative end-of-data sequence
followed by a complete second transaction, then the real CRLF.CRLF and a NOOP. The replies must
be exactly: one for the message, one for the NOOP. A smuggled MAIL/RCPT/DATA that ran would
show up as extra replies and as a second accepted message.
"""

from __future__ import annotations

import asyncio

import pytest

from mta.smtp.validate import has_bare_line_endings
from tests.integration.smtp.harness import ConnectClient, StartServer

HEADER = b"From: a@example.org\r\nSubject: real\r\n\r\nreal body"
SMUGGLED = (
    b"MAIL FROM:<evil@attacker.example>\r\n"
    b"RCPT TO:<victim@example.com>\r\n"
    b"DATA\r\n"
    b"Subject: smuggled\r\n\r\nevil\r\n"
)
# variant -> what it becomes once normalized ("\r\n." then "\r": the dot is a transparency dot)
VARIANTS = {
    b"\n.\n": b"\r\n.\r\n",
    b"\n.\r\n": b"\r\n.\r\n",
    b"\r.\r": b"\r\n.\r\n",
    b"\r\n.\r": b"\r\n\r\n",
    b"\r.\r\n": b"\r\n.\r\n",
}
VARIANT_IDS = [repr(variant)[2:-1] for variant in VARIANTS]


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
async def test_smuggled_end_of_data_is_rejected(
    start_server: StartServer, connect: ConnectClient, variant: bytes
) -> None:
    harness = await start_server(bare_line_endings="reject")
    raw = await connect(harness.port)
    await raw.start_mail()
    await raw.send(HEADER + variant + SMUGGLED + b".\r\nNOOP\r\n")
    assert await raw.reply() == (
        "550 5.6.11 Message contains bare CR or bare LF; use CRLF line endings"
    )
    assert await raw.reply() == "250 2.0.0 OK"
    assert harness.accept.inbounds == []
    assert [(e["command"], e["reply"].code) for e in harness.events.rejections] == [("DATA", 550)]


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
async def test_smuggled_end_of_data_stays_inside_a_normalized_message(
    start_server: StartServer, connect: ConnectClient, variant: bytes
) -> None:
    harness = await start_server(bare_line_endings="normalize")
    raw = await connect(harness.port)
    await raw.start_mail()
    await raw.send(HEADER + variant + SMUGGLED + b".\r\nNOOP\r\n")
    assert await raw.reply() == "250 2.0.0 OK queued as msg1"
    assert await raw.reply() == "250 2.0.0 OK"
    [inbound] = harness.accept.inbounds
    assert (inbound.sender, inbound.recipients) == ("a@example.org", ("b@example.com",))
    assert inbound.data.endswith(HEADER + VARIANTS[variant] + SMUGGLED)
    assert not has_bare_line_endings(inbound.data)


@pytest.mark.parametrize("mode", ["reject", "normalize"])
async def test_bare_line_endings(
    start_server: StartServer, connect: ConnectClient, mode: str
) -> None:
    harness = await start_server(bare_line_endings=mode)
    raw = await connect(harness.port)
    await raw.start_mail()
    reply = await raw.command(b"Subject: bare\n\nline one\nline two\rline three\r\n.\r\n")
    if mode == "reject":
        assert reply.startswith("550 5.6.11 ")
        assert harness.accept.inbounds == []
    else:
        assert reply == "250 2.0.0 OK queued as msg1"
        expected = b"Subject: bare\r\n\r\nline one\r\nline two\r\nline three\r\n"
        assert harness.accept.inbounds[0].data.endswith(expected)


async def test_end_of_data_split_across_writes(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server()
    raw = await connect(harness.port)
    await raw.start_mail()
    for piece in (b"Subject: split\r\n\r\nbody\r", b"\n.", b"\r", b"\n"):
        await raw.send(piece)
        await asyncio.sleep(0.02)
    assert await raw.reply() == "250 2.0.0 OK queued as msg1"
    assert harness.accept.inbounds[0].data.endswith(b"\r\n\r\nbody\r\n")


async def test_only_a_lone_dot_line_ends_data(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server()
    raw = await connect(harness.port)
    await raw.start_mail()
    await raw.send(b"Subject: dots\r\n\r\n. \r\n.x\r\n...\r\n")
    with pytest.raises(TimeoutError):  # still in DATA: nothing to answer yet
        async with asyncio.timeout(0.2):
            await raw.reply()
    assert await raw.command(b".\r\n") == "250 2.0.0 OK queued as msg1"
    assert harness.accept.inbounds[0].data.endswith(b"\r\n\r\n \r\nx\r\n..\r\n")
