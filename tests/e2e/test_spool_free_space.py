"""Spool free space under min_free_bytes: new mail gets 452 4.3.1, accepted mail is kept and
delivered once space is back."""

import asyncio
import os

import aiosmtplib
import pytest

from tests.support.node import InProcessNode, node_settings
from tests.support.scenario import relay_target

MARGIN = 16 * 1024 * 1024
FILLER = 64 * 1024 * 1024


def free_bytes(path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


async def test_low_free_space_refuses_without_losing_mail(tmp_path, sink_factory) -> None:
    relay = relay_target()
    threshold = free_bytes(tmp_path) - MARGIN
    settings = node_settings(
        tmp_path,
        spool={"min_free_bytes": threshold},
        routes=relay.routes,
    )
    filler = tmp_path / "filler"
    async with InProcessNode(settings) as node:
        refused, _ = await node.send("alice@example.org", ["first@example.com"])
        assert refused == {}
        await node.wait_for_record("TransientFailure", "first@example.com")  # sink not up yet

        with filler.open("wb") as handle:
            os.posix_fallocate(handle.fileno(), 0, FILLER)
        await asyncio.sleep(0.7)  # the spool re-reads free space at most every 0.5 s
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused_info:
            await node.send("alice@example.org", ["second@example.com"])
        assert refused_info.value.code == 452
        assert "4.3.1" in refused_info.value.message

        filler.unlink()
        await asyncio.sleep(0.7)
        refused, _ = await node.send("alice@example.org", ["third@example.com"])
        assert refused == {}
        sink = await relay.start_sink(sink_factory)
        await sink.wait_for_messages(2, timeout=15)

    delivered = sorted(r for m in sink.messages for r in m.rcpt_tos)
    assert delivered == ["first@example.com", "third@example.com"]
    assert node.of_type("Reception", "second@example.com") == []
