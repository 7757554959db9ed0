"""TsaSubscriber against a TSA stand-in: replayed and new events, bad messages skipped,
reconnection after the TSA restarts."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from shaping.tsa.client import TsaSubscriber
from shaping.tsa.events import (
    AutomationEvent,
    ReadyQueueSuspension,
    SchedQueueBounce,
    event_to_message,
)
from tests.support.tsa_standin import TsaStandIn, eventually

EXPIRES = float(int(time.time()) + 3600)
SUSPEND = ReadyQueueSuspension(
    rule_hash="r1", reason="421 4.7.28 rate limited", expires=EXPIRES, site_name="mx.example"
)
BOUNCE = SchedQueueBounce(rule_hash="r2", reason="550 5.1.1", expires=EXPIRES, domain="a.example")


@pytest.fixture
async def tsa() -> AsyncIterator[TsaStandIn]:
    standin = TsaStandIn()
    await standin.start()
    yield standin
    await standin.stop()


async def test_replayed_and_new_events_reach_the_handler(tsa: TsaStandIn) -> None:
    tsa.replay = [event_to_message(SUSPEND)]
    seen: list[AutomationEvent] = []
    subscriber = TsaSubscriber(tsa.url, seen.append, token="s3cret")
    await subscriber.start()
    try:
        await eventually(lambda: seen == [SUSPEND] and bool(tsa.sockets))
        assert subscriber.connected
        await tsa.broadcast("not json")
        await tsa.broadcast('{"SomethingNewer": {"x": 1}}')  # a kind this node does not know
        await tsa.broadcast('{"SchedQBounce": {"domain": 5}}')  # malformed
        await tsa.broadcast(event_to_message(BOUNCE))
        await eventually(lambda: len(seen) == 2)
    finally:
        await subscriber.close()
    assert seen == [SUSPEND, BOUNCE]
    assert subscriber.received == 2
    assert tsa.authorizations == ["Bearer s3cret"]
    assert not subscriber.connected


async def test_the_subscriber_reconnects_after_the_tsa_restarts(tsa: TsaStandIn) -> None:
    tsa.replay = [event_to_message(SUSPEND)]
    seen: list[AutomationEvent] = []
    subscriber = TsaSubscriber(tsa.url, seen.append, retry_initial=0.05, retry_max=0.2)
    await subscriber.start()
    try:
        await eventually(lambda: subscriber.connected and len(seen) == 1)
        await tsa.stop()
        await eventually(lambda: not subscriber.connected)
        restarted = TsaStandIn(tsa.port)
        restarted.replay = [event_to_message(SUSPEND), event_to_message(BOUNCE)]
        await restarted.start()
        try:
            await eventually(lambda: subscriber.connected and len(seen) == 3)
        finally:
            await subscriber.close()
            await restarted.stop()
    finally:
        await subscriber.close()
    assert seen == [SUSPEND, SUSPEND, BOUNCE]  # a reconnect replays what is active


async def test_a_failing_handler_does_not_end_the_subscription(tsa: TsaStandIn) -> None:
    seen: list[AutomationEvent] = []

    def handler(event: AutomationEvent) -> None:
        seen.append(event)
        if len(seen) == 1:
            raise RuntimeError("boom")

    tsa.replay = [event_to_message(SUSPEND), event_to_message(BOUNCE)]
    subscriber = TsaSubscriber(tsa.url, handler)
    await subscriber.start()
    try:
        await eventually(lambda: len(seen) == 2)
    finally:
        await subscriber.close()
    assert seen == [SUSPEND, BOUNCE]
    assert tsa.connections == 1
