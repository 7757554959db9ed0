"""SIGKILL with acknowledged mail queued loses nothing: after a restart all of it is delivered,
exactly once per recipient."""

from tests.support.node import NodeProcess, node_settings, send, simple_message
from tests.support.scenario import relay_target

MESSAGES = 20


async def test_sigkill_then_restart_delivers_everything_once(tmp_path, sink_factory) -> None:
    relay = relay_target()
    settings = node_settings(tmp_path, routes=relay.routes)
    node = NodeProcess(settings, tmp_path)
    await node.start()
    try:
        for i in range(MESSAGES):
            refused, _reply = await send(
                node.address,
                "alice@example.org",
                [f"rcpt{i}@example.com", f"cc{i}@example.net"],
                simple_message(f"message {i}"),
            )
            assert refused == {}
        await node.wait_for_record("TransientFailure", count=1)  # the sink is down
        node.kill()
    finally:
        await node.close()

    sink = await relay.start_sink(sink_factory)
    restarted = NodeProcess(settings, tmp_path)
    await restarted.start()
    try:
        await sink.wait_for_messages(2 * MESSAGES, timeout=30)
        await restarted.wait_for_record("Delivery", count=2 * MESSAGES, timeout=30)
        assert await restarted.terminate() == 0
    finally:
        await restarted.close()

    delivered = sorted(r for m in sink.messages for r in m.rcpt_tos)
    expected = sorted(
        [f"rcpt{i}@example.com" for i in range(MESSAGES)]
        + [f"cc{i}@example.net" for i in range(MESSAGES)]
    )
    assert delivered == expected  # every recipient exactly once
    subjects = {m.data.split(b"Subject: ")[1].split(b"\r\n")[0] for m in sink.messages}
    assert len(subjects) == MESSAGES
