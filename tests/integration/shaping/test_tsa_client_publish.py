"""TsaPublisher against a recording TSA stand-in on loopback: order, exactly once per URL,
retries, restarts with a backlog, and a caller that never waits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from shaping.tsa.client import TsaPublisher
from tests.support.tsa_standin import TsaStandIn, eventually

FAST_RETRY = {"retry_initial": 0.02, "retry_max": 0.1}
Factory = Callable[..., Awaitable[TsaStandIn]]
PublisherFactory = Callable[..., Awaitable[TsaPublisher]]


@pytest.fixture
async def standin() -> AsyncIterator[Factory]:
    """``await standin(start=True, port=None)``: a TSA stand-in, stopped at teardown."""
    made: list[TsaStandIn] = []

    async def make(start: bool = True, port: int | None = None) -> TsaStandIn:
        made.append(TsaStandIn(port))
        if start:
            await made[-1].start()
        return made[-1]

    yield make
    for tsa in made:
        tsa.hold.set()
        await tsa.stop()


@pytest.fixture
async def publisher(tmp_path: Path) -> AsyncIterator[PublisherFactory]:
    """``await publisher(urls, **options)``: a started TsaPublisher with its outboxes under
    tmp_path; those still open are closed at teardown."""
    made: list[TsaPublisher] = []

    async def make(urls: list[str], **options: Any) -> TsaPublisher:
        options = {"batch_size": 50, "batch_delay": 0.01, **FAST_RETRY, **options}
        made.append(TsaPublisher(urls, tmp_path / "outbox", **options))
        await made[-1].start()
        return made[-1]

    yield make
    for one in made:
        await one.close(timeout=1.0)


def record(n: int, type: str = "TransientFailure") -> dict[str, Any]:
    return {"type": type, "id": f"msg{n}", "recipient": f"user{n}@example.com", "n": n}


def numbers(tsa: TsaStandIn) -> list[int]:
    return [entry["n"] for entry in tsa.records]


async def test_batches_arrive_in_order_exactly_once_at_every_url(
    standin: Factory, publisher: PublisherFactory
) -> None:
    first, second = await standin(), await standin()
    node = await publisher([first.url, second.url], token="s3cret")
    kinds = ["TransientFailure", "Bounce", "Delivery", "Reception"]
    for n in range(1_000):
        node.publish(record(n, kinds[n % 4]))
    expected = [n for n in range(1_000) if n % 4 < 2]  # the TSA only acts on these two
    for tsa in (first, second):
        await tsa.wait_for(lambda tsa=tsa: len(tsa.records) >= len(expected))
    await node.close()
    assert numbers(first) == expected
    assert numbers(second) == expected
    assert max(first.batch_sizes) <= 50
    assert set(first.authorizations) == {"Bearer s3cret"}
    stats = node.stats()
    assert stats.sent == 2 * len(expected)
    assert stats.backlog == {first.url: 0, second.url: 0}
    assert (stats.dropped, stats.failures) == (0, 0)


async def test_errors_and_a_down_replica_are_retried(
    standin: Factory, publisher: PublisherFactory
) -> None:
    failing, down = await standin(), await standin(start=False)
    failing.fail_next = 3
    node = await publisher([failing.url, down.url])
    for n in range(120):
        node.publish(record(n))
    await failing.wait_for(lambda: len(failing.records) >= 120)
    assert numbers(failing) == list(range(120))
    assert node.stats().backlog[down.url] == 120
    await down.start()
    await down.wait_for(lambda: len(down.records) >= 120)
    assert numbers(down) == list(range(120))
    assert node.stats().failures >= 4  # three 500s, at least one refused connection


async def test_a_request_that_times_out_is_sent_again(
    standin: Factory, publisher: PublisherFactory
) -> None:
    slow = await standin()
    slow.stall_next, slow.stall_seconds = 1, 2.0
    node = await publisher([slow.url], request_timeout=0.2)
    for n in range(10):
        node.publish(record(n))
    await slow.wait_for(lambda: len(slow.records) >= 10)
    assert numbers(slow) == list(range(10))
    assert node.stats().failures >= 1


async def test_unsent_records_are_sent_after_a_restart(
    standin: Factory, publisher: PublisherFactory
) -> None:
    tsa = await standin(start=False)
    before = await publisher([tsa.url])
    for n in range(70):
        before.publish(record(n))
    await before.close()  # the TSA was never reached: all 70 wait in the outbox
    assert before.stats().backlog == {tsa.url: 70}
    await tsa.start()
    after = await publisher([tsa.url])
    for n in range(70, 90):
        after.publish(record(n))
    await tsa.wait_for(lambda: len(tsa.records) >= 90)
    await after.close()
    assert numbers(tsa) == list(range(90))


async def test_the_backlog_is_bounded_and_keeps_the_newest(
    standin: Factory, publisher: PublisherFactory
) -> None:
    tsa = await standin(start=False)
    node = await publisher([tsa.url], max_records=30)
    for n in range(100):
        node.publish(record(n))
    await node.close()
    assert node.stats().backlog == {tsa.url: 30}
    assert node.stats().dropped == 70
    await tsa.start()
    await publisher([tsa.url], max_records=30)
    await tsa.wait_for(lambda: len(tsa.records) >= 30)
    assert numbers(tsa) == list(range(70, 100))


async def test_publish_never_waits_for_a_hanging_tsa(
    standin: Factory, publisher: PublisherFactory
) -> None:
    tsa = await standin()
    tsa.hold.clear()  # every POST hangs until released
    node = await publisher([tsa.url], request_timeout=30.0)
    node.publish(record(0))
    await tsa.wait_for(lambda: tsa.posts == 1)
    # The post is stuck in the TSA; publishing goes on and lands in the outbox meanwhile.
    for n in range(1, 500):
        node.publish(record(n))
    await eventually(lambda: node.stats().backlog[tsa.url] == 500)
    assert tsa.posts == 1 and tsa.records == []
    tsa.hold.set()
    await tsa.wait_for(lambda: len(tsa.records) >= 500)
    assert numbers(tsa) == list(range(500))


async def test_close_does_not_wait_for_a_hanging_tsa(
    standin: Factory, publisher: PublisherFactory
) -> None:
    tsa = await standin()
    tsa.hold.clear()
    node = await publisher([tsa.url], request_timeout=30.0)
    node.publish(record(0))
    await tsa.wait_for(lambda: tsa.posts == 1)
    await node.close(timeout=0.2)  # gives up on the post in flight; the record stays queued
    assert node.stats().backlog == {tsa.url: 1}


async def test_a_refused_record_is_isolated_and_dropped(
    standin: Factory, publisher: PublisherFactory
) -> None:
    tsa = await standin()
    tsa.refuse = lambda entry: entry.get("n") == 13
    tsa.hold.clear()  # let the records pile up so they go as one batch
    node = await publisher([tsa.url])
    for n in range(40):
        node.publish(record(n))
    await eventually(lambda: node.stats().backlog[tsa.url] == 40 and tsa.posts >= 1)
    tsa.hold.set()
    await tsa.wait_for(lambda: len(tsa.records) >= 39)
    await eventually(lambda: node.stats().rejected == 1)
    assert numbers(tsa) == [n for n in range(40) if n != 13]
