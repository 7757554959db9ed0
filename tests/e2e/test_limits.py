"""Line, recipient and size limits answer with the RFC codes, and nothing over a limit is
delivered."""

import asyncio

import aiosmtplib
import pytest

from tests.support.node import InProcessNode, node_settings, simple_message, wait_until
from tests.support.scenario import relay_target


@pytest.fixture
async def relay_node(tmp_path, sink_factory):
    relay = relay_target()
    sink = await relay.start_sink(sink_factory)
    settings = node_settings(
        tmp_path,
        smtp={"max_recipients": 5, "max_message_bytes": 10_000},
        routes=relay.routes,
    )
    async with InProcessNode(settings) as node:
        yield node, sink


async def raw_session(address, commands: list[bytes]) -> list[bytes]:
    reader, writer = await asyncio.open_connection(*address)
    replies = [await reader.readline()]
    for command in commands:
        writer.write(command)
        await writer.drain()
        while (line := await asyncio.wait_for(reader.readline(), 5)).startswith(b"250-"):
            pass
        replies.append(line)
    writer.close()
    return replies


async def test_too_many_recipients(relay_node) -> None:
    node, sink = relay_node
    recipients = [f"r{i}@example.com" for i in range(7)]
    refused, _ = await node.send("alice@example.org", recipients)
    assert sorted(refused) == ["r5@example.com", "r6@example.com"]
    assert all(code == 452 and "4.5.3" in text for code, text in refused.values())
    [message] = await sink.wait_for_messages(1)
    assert message.rcpt_tos == recipients[:5]


async def test_declared_size_over_limit(relay_node) -> None:
    node, _sink = relay_node
    replies = await raw_session(
        node.address, [b"EHLO c.test\r\n", b"MAIL FROM:<a@example.org> SIZE=20000\r\n"]
    )
    assert replies[2].startswith(b"552 5.3.4")


async def test_actual_size_over_limit(relay_node) -> None:
    node, sink = relay_node
    body = ("x" * 70 + "\r\n") * 200  # 14 KB
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await node.send("alice@example.org", ["bob@example.com"], simple_message(body=body))
    assert info.value.code == 552
    assert node.of_type("Reception") == []
    assert sink.messages == []


async def test_command_line_too_long(relay_node) -> None:
    node, _sink = relay_node
    long_command = b"MAIL FROM:<" + b"a" * 500 + b"@example.org>\r\n"  # > 512 octets
    assert len(long_command) > 512
    replies = await raw_session(node.address, [b"EHLO c.test\r\n", long_command])
    assert replies[2].startswith(b"500")


async def test_text_line_too_long(relay_node) -> None:
    node, sink = relay_node
    long_line = "y" * 1001
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await node.send(
            "alice@example.org", ["bob@example.com"], simple_message(body=long_line + "\r\n")
        )
    assert info.value.code in (500, 552)
    await wait_until(node.node.queue.is_idle)
    assert node.of_type("Reception") == []
    assert sink.messages == []
