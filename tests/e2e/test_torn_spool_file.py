"""A record torn by a crash mid-write is moved to quarantine and logged; the node still starts
and delivers every message that was acknowledged."""

from tests.support.node import NodeProcess, node_settings, send, simple_message
from tests.support.scenario import relay_target

MESSAGES = 5
SEGMENT_HEADER = 16


async def test_torn_record_is_quarantined(tmp_path, sink_factory) -> None:
    relay = relay_target()
    settings = node_settings(tmp_path, routes=relay.routes)
    node = NodeProcess(settings, tmp_path)
    await node.start()
    try:
        for i in range(MESSAGES):
            await send(
                node.address,
                "alice@example.org",
                [f"r{i}@example.com"],
                simple_message(f"kept {i}"),
            )
        node.kill()
    finally:
        await node.close()

    # Simulate a crash in the middle of writing one more record: its header and the first
    # bytes of its payload reached the disk, the rest did not.
    segments = sorted((tmp_path / "spool" / "segments").glob("*.seg"))
    first_record = segments[0].read_bytes()[SEGMENT_HEADER : SEGMENT_HEADER + 60]
    with segments[-1].open("ab") as segment:
        segment.write(first_record)

    sink = await relay.start_sink(sink_factory)
    restarted = NodeProcess(settings, tmp_path)
    await restarted.start()
    try:
        await sink.wait_for_messages(MESSAGES, timeout=20)
        assert await restarted.terminate() == 0
    finally:
        await restarted.close()

    quarantined = list((tmp_path / "spool" / "quarantine").iterdir())
    assert len(quarantined) == 1
    assert quarantined[0].read_bytes() == first_record
    assert "torn" in restarted.stderr() or "quarantine" in restarted.stderr()
    assert sorted(r for m in sink.messages for r in m.rcpt_tos) == sorted(
        f"r{i}@example.com" for i in range(MESSAGES)
    )
