"""SIGTERM: stop listening, 421 to open sessions, finish the delivery in flight, exit 0."""

import asyncio

from tests.support.node import NodeProcess, node_settings, send, simple_message
from tests.support.scenario import relay_target


async def test_graceful_sigterm_drain(tmp_path, sink_factory) -> None:
    relay = relay_target()
    sink = await relay.start_sink(sink_factory, stall="DATA", stall_seconds=1.5)
    settings = node_settings(tmp_path, routes=relay.routes)
    node = NodeProcess(settings, tmp_path)
    await node.start()
    try:
        await send(node.address, "alice@example.org", ["bob@example.com"], simple_message())
        idle_reader, idle_writer = await asyncio.open_connection(*node.address)
        assert (await idle_reader.readline()).startswith(b"220 ")
        idle_writer.write(b"EHLO client.test\r\n")
        await idle_writer.drain()
        while not (await idle_reader.readline()).startswith(b"250 "):
            pass
        await sink.wait_for_connections(1)  # the delivery is in flight, stalled at DATA

        code = await node.terminate()
        goodbye = await asyncio.wait_for(idle_reader.readline(), 5)
        idle_writer.close()
    finally:
        await node.close()

    assert code == 0
    assert goodbye.startswith(b"421 4.3.2")
    assert [m.rcpt_tos for m in sink.messages] == [["bob@example.com"]]
    assert len(node.of_type("Delivery", "bob@example.com")) == 1
    try:
        await asyncio.open_connection(*node.address)
    except OSError:
        pass
    else:
        raise AssertionError("the node still accepts connections after SIGTERM")
