"""Webhooks against a real aiohttp receiver: signed batches, retries, restarts, the bound."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from mta.config import WebhookConfig
from mta.logs import RecordLog
from mta.replies import S250_QUEUED, S451_LOCAL_ERROR
from mta.webhooks import WebhookCollector, Webhooks, signature, verify
from tests.support.node import wait_until
from tests.support.webhook_receiver import WebhookReceiver

SECRET = b"correct horse battery staple"
FAST = {"max_delay": 0.1, "retry_interval": 0.05, "max_retry_interval": 0.2, "timeout": 5}


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()  # not started: each test decides when
    yield receiver
    await receiver.stop()


class Harness:
    """A RecordLog feeding one Webhooks, as in the node."""

    def __init__(self, spool: Path, **config: Any) -> None:
        self.log = RecordLog(nodeid="n1", stdout=False)
        self.hooks = Webhooks([WebhookConfig(**{**FAST, **config})], spool)
        self.log.add_listener(self.hooks.observe)
        [self.channel] = self.hooks.channels

    def deliveries(self, count: int, first: int = 0) -> None:
        for n in range(first, first + count):
            self.log.record("Delivery", id=f"m{n}", sender="a@example.org",
                            recipient=f"r{n}@example.com", response=S250_QUEUED)  # fmt: skip

    def stats(self) -> Any:
        return self.channel.stats()


def _secret_file(tmp_path: Path, secret: bytes = SECRET) -> Path:
    path = tmp_path / "webhook.secret"
    path.write_bytes(secret + b"\n")  # as `echo` writes it: the newline is not part of it
    return path


async def test_signed_batches_of_the_chosen_types(tmp_path, receiver) -> None:
    receiver.secret = SECRET
    await receiver.start()
    hooks = Harness(tmp_path, url=receiver.url, batch_size=3,
                    secret_file=_secret_file(tmp_path))  # fmt: skip
    await hooks.hooks.start()
    hooks.deliveries(7)
    hooks.log.record("Reception", id="m0", sender="a@example.org", recipient="r0@example.com",
                     response=S250_QUEUED)  # fmt: skip
    hooks.log.record("TransientFailure", id="m9", sender="a@example.org",
                     recipient="r9@example.com", response=S451_LOCAL_ERROR)  # fmt: skip
    await receiver.wait_for_records(8)
    await hooks.hooks.close()

    assert receiver.bad_signatures == 0
    assert all(len(batch) <= 3 for batch in receiver.batches)
    assert [r["id"] for r in receiver.records] == [f"m{n}" for n in range(7)] + ["m9"]
    assert "Reception" not in {r["type"] for r in receiver.records}  # not a default type
    assert receiver.records[0]["response"]["code"] == 250 and receiver.records[0]["nodeid"] == "n1"
    assert hooks.stats().sent == 8 and hooks.stats().backlog == 0


def test_signature_scheme() -> None:
    body = b'[{"type":"Delivery"}]'
    now = time.time()
    stamp = str(int(now))
    header = signature(SECRET, stamp, body)
    assert header.startswith("sha256=") and len(header) == len("sha256=") + 64
    assert verify(SECRET, stamp, body, header, now=now)
    assert not verify(b"other secret", stamp, body, header, now=now)
    assert not verify(SECRET, stamp, body + b" ", header, now=now)  # the exact bytes
    assert not verify(SECRET, str(int(now) + 1), body, header, now=now)  # the time is signed
    assert not verify(SECRET, stamp, body, header, now=now + 301)  # a replay, later
    assert not verify(SECRET, "yesterday", body, header, now=now)


async def test_receiver_down_then_up_gets_every_record_once(tmp_path, receiver) -> None:
    hooks = Harness(tmp_path, url=receiver.url, batch_size=10)
    await hooks.hooks.start()
    hooks.deliveries(50)
    await wait_until(lambda: hooks.stats().failures >= 2, what="failed attempts while down")
    assert hooks.stats().queued == 50 and hooks.stats().backlog == 50
    await receiver.start()
    await receiver.wait_for_records(50)
    await hooks.hooks.close()
    assert set(receiver.keys().values()) == {1}  # none twice
    assert [r["id"] for r in receiver.records] == [f"m{n}" for n in range(50)]  # in order
    assert (hooks.stats().sent, hooks.stats().backlog, hooks.stats().dropped) == (50, 0, 0)


async def test_error_answers_are_retried_and_413_shrinks_the_batch(tmp_path, receiver) -> None:
    receiver.statuses = [500, 413, 503]
    await receiver.start()
    hooks = Harness(tmp_path, url=receiver.url, batch_size=8, max_delay=5)
    await hooks.hooks.start()
    hooks.deliveries(8)  # a full batch goes without waiting for max_delay
    await receiver.wait_for_records(8)
    await hooks.hooks.close()
    assert receiver.requests >= 4 and hooks.stats().failures == 3
    assert max(len(batch) for batch in receiver.batches) <= 4
    assert set(receiver.keys().values()) == {1}


async def test_backlog_survives_a_restart(tmp_path, receiver) -> None:
    first = Harness(tmp_path, url=receiver.url, name="crm")
    await first.hooks.start()
    first.deliveries(10)
    await wait_until(lambda: first.stats().queued == 10, what="records on disk")
    await first.hooks.close()
    assert (tmp_path / "webhooks" / "crm").is_dir()

    await receiver.start()
    second = Harness(tmp_path, url=receiver.url, name="crm")
    second.deliveries(2, first=10)  # observed before start: kept, then queued behind the old
    await second.hooks.start()
    await receiver.wait_for_records(12)
    await second.hooks.close()
    assert [r["id"] for r in receiver.records] == [f"m{n}" for n in range(12)]


async def test_full_backlog_drops_the_oldest(tmp_path, receiver) -> None:
    hooks = Harness(tmp_path, url=receiver.url, max_backlog=5)
    await hooks.hooks.start()
    for first in range(0, 12, 3):
        hooks.deliveries(3, first=first)
        await wait_until(lambda f=first: hooks.stats().queued == min(f + 3, 12), what="queued")
    assert hooks.stats().backlog == 5 and hooks.stats().dropped == 7
    await receiver.start()
    await receiver.wait_for_records(5)
    await hooks.hooks.close()
    assert [r["id"] for r in receiver.records] == [f"m{n}" for n in range(7, 12)]


async def test_a_changed_secret_file_is_used_for_later_batches(tmp_path, receiver) -> None:
    path = _secret_file(tmp_path)
    receiver.secret = SECRET
    await receiver.start()
    hooks = Harness(tmp_path, url=receiver.url, secret_file=path)
    await hooks.hooks.start()
    hooks.deliveries(1)
    await receiver.wait_for_records(1)
    path.write_bytes(b"rotated")
    receiver.secret = b"rotated"
    hooks.deliveries(1, first=1)
    await receiver.wait_for_records(2)
    await hooks.hooks.close()
    assert receiver.bad_signatures == 0


def test_a_missing_secret_file_stops_the_start(tmp_path) -> None:
    config = WebhookConfig(url="http://127.0.0.1:1/", secret_file=tmp_path / "absent")
    with pytest.raises(FileNotFoundError):
        Webhooks([config], tmp_path)


async def test_metrics_per_webhook(tmp_path, receiver) -> None:
    await receiver.start()
    hooks = Harness(tmp_path, url=receiver.url, name="crm")
    registry = CollectorRegistry()
    registry.register(WebhookCollector(hooks.hooks.stats))
    await hooks.hooks.start()
    hooks.deliveries(3)
    await receiver.wait_for_records(3)
    await wait_until(lambda: hooks.stats().sent == 3, what="acknowledged")
    text = generate_latest(registry).decode()
    await hooks.hooks.close()
    for line in (
        'mta_webhook_backlog{webhook="crm"} 0.0',
        'mta_webhook_queued_total{webhook="crm"} 3.0',
        'mta_webhook_sent_total{webhook="crm"} 3.0',
        'mta_webhook_failures_total{webhook="crm"} 0.0',
        'mta_webhook_dropped_total{webhook="crm"} 0.0',
    ):
        assert line in text
