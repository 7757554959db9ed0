"""SMTP smuggling: no end-of-data variant other than CRLF.CRLF ends a message, and nothing
hidden inside the data ever becomes a second message, all the way to the receiving sink."""

import asyncio

import pytest

from tests.support.node import InProcessNode, node_settings, wait_until
from tests.support.scenario import relay_target

VARIANTS = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r", b"\r.\r\n", b"\r\n.\n"]


async def smtp_dialogue(address: tuple[str, int], payload: bytes) -> list[bytes]:
    reader, writer = await asyncio.open_connection(*address)
    replies = [await reader.readline()]
    writer.write(b"EHLO attacker.test\r\n")
    while not (await reader.readline()).startswith(b"250 "):
        pass
    writer.write(b"MAIL FROM:<alice@example.org>\r\n")
    replies.append(await reader.readline())
    writer.write(b"RCPT TO:<bob@example.com>\r\n")
    replies.append(await reader.readline())
    writer.write(b"DATA\r\n")
    replies.append(await reader.readline())
    writer.write(payload)
    await writer.drain()
    replies.append(await asyncio.wait_for(reader.readline(), 5))
    writer.write(b"QUIT\r\n")
    await writer.drain()
    rest = await asyncio.wait_for(reader.read(), 5)
    replies.extend(rest.splitlines(keepends=True))
    writer.close()
    return replies


def smuggling_payload(end: bytes) -> bytes:
    return (
        b"From: alice@example.org\r\nTo: bob@example.com\r\nSubject: outer\r\n\r\n"
        b"first part"
        + end
        + b"MAIL FROM:<admin@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
        b"From: admin@example.com\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n"
    )


@pytest.mark.parametrize("mode", ["reject", "normalize"])
@pytest.mark.parametrize("end", VARIANTS, ids=[repr(v) for v in VARIANTS])
async def test_smuggled_end_of_data_never_makes_a_second_message(
    tmp_path, sink_factory, end: bytes, mode: str
) -> None:
    relay = relay_target()
    sink = await relay.start_sink(sink_factory)
    settings = node_settings(
        tmp_path,
        smtp={"bare_line_endings": mode},
        routes=relay.routes,
    )
    async with InProcessNode(settings) as node:
        replies = await smtp_dialogue(node.address, smuggling_payload(end))
        final = replies[4]
        if mode == "reject":
            assert final.startswith(b"550 5.6.11"), final
        else:
            assert final.startswith(b"250 "), final
            await sink.wait_for_messages(1)
        await wait_until(node.node.queue.is_idle)

    receptions = node.of_type("Reception")
    assert all(r["recipient"] == "bob@example.com" for r in receptions)
    assert len(receptions) == (0 if mode == "reject" else 1)
    assert all(m.rcpt_tos == ["bob@example.com"] for m in sink.messages)
    assert len(sink.messages) == len(receptions)
    for message in sink.messages:
        # The would-be second message travelled as text inside the one real message.
        assert b"Subject: smuggled" in message.data.split(b"\r\n\r\n", 1)[1]
        assert b"\n" not in message.data.replace(b"\r\n", b"")  # all line ends are CRLF
    assert not any(b"victim" in line for line in replies[5:])
