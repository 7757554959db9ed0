"""InjectService.close(finish=True): deferred batches expand whole before the service stops
(the node drains its spool to a peer next, and the peer takes messages, not batches)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mta.inject import service
from tests.support.node import InProcessNode, node_settings
from tests.support.scenario import relay_target
from tests.unit.inject.test_inject_service import PEER, new_service, request

RECIPIENTS = 40


def batches_and_messages(node: InProcessNode) -> tuple[int, int]:
    """Spool entries that are inject batches (not queued), and queued messages."""
    queued = len(node.node.queue.messages)
    return len(node.node.spool) - queued, queued


@pytest.mark.parametrize(("finish", "expected"), [(True, (0, RECIPIENTS)), (False, (1, 0))])
async def test_close_with_finish_expands_every_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, finish: bool, expected: tuple[int, int]
) -> None:
    monkeypatch.setattr(service, "CHUNK", 4)  # ten chunks: several loop turns to expand
    relay = relay_target()  # nothing listens there: the generated messages stay queued
    async with InProcessNode(node_settings(tmp_path, routes=relay.routes)) as node:
        inject = new_service(node)
        await inject.inject(request(RECIPIENTS, deferred_generation=True), peer_address=PEER)

        await inject.close(10, finish=finish)

        assert batches_and_messages(node) == expected
