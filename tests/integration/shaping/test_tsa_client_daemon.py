"""The node-side client against the real TSA daemon on loopback: records published through
TsaPublisher are processed exactly once, the threshold rule fires on the last one, and the
subscriber and the overrides poller see the result, all with bearer-token auth."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shaping.tsa.client import TsaConfigPoller, TsaPublisher, TsaSubscriber
from shaping.tsa.daemon import DaemonSettings, TsaDaemon
from shaping.tsa.events import AutomationEvent, ConfigOverride, ReadyQueueSuspension
from tests.support.net import free_port
from tests.support.tsa_standin import eventually

TOKEN = "node-token"
THRESHOLD = 30
SHAPING = f"""
[["default".automation]]
regex = '4\\.7\\.28'
action = "Suspend"
trigger = {{ Threshold = "{THRESHOLD}/h" }}
duration = "1h"

[["default".automation]]
regex = '4\\.7\\.28'
action = {{ SetConfig = {{ name = "max_message_rate", value = "5/m" }} }}
trigger = {{ Threshold = "{THRESHOLD}/h" }}
duration = "1h"
"""


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[TsaDaemon]:
    (tmp_path / "shaping.toml").write_text(SHAPING)
    (tmp_path / "tokens").write_text(TOKEN + "\n")
    settings = DaemonSettings(
        host="127.0.0.1",
        port=free_port(),
        state_path=tmp_path / "tsa" / "state.json",
        shaping_files=(tmp_path / "shaping.toml",),
        trusted_networks=(),  # loopback is not trusted here: the token is required
        tokens_file=tmp_path / "tokens",
    )
    tsa = TsaDaemon(settings)
    await tsa.start()
    yield tsa
    await tsa.stop()


def rate_limited(n: int) -> dict[str, Any]:
    return {
        "type": "TransientFailure",
        "id": f"msg{n}",
        "sender": "news@sender.example",
        "recipient": f"user{n}@example.com",
        "queue": "example.com",
        "site": "mx.example.com",
        "egress_source": "ip-1",
        "timestamp": int(time.time()),
        "response": {
            "code": 421,
            "enhanced_code": {"class": 4, "subject": 7, "detail": 28},
            "content": "rate limited",
            "command": "MAIL FROM:<news@sender.example>",
        },
    }


async def test_published_records_reach_the_daemon_once_and_events_come_back(
    daemon: TsaDaemon, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{daemon.settings.port}"
    events: list[AutomationEvent] = []
    texts: list[str] = []
    publisher = TsaPublisher([url], tmp_path / "outbox", token=TOKEN, batch_delay=0.01)
    subscriber = TsaSubscriber(url, events.append, token=TOKEN)
    poller = TsaConfigPoller(url, texts.append, token=TOKEN, interval=0.05)
    for part in (publisher, subscriber, poller):
        await part.start()
    try:
        await eventually(lambda: subscriber.connected and len(texts) == 1)
        for n in range(THRESHOLD - 1):
            publisher.publish(rate_limited(n))
            publisher.publish({"type": "Delivery", "id": f"ok{n}"})  # not for the TSA
        await eventually(lambda: daemon.records_processed == THRESHOLD - 1)
        assert daemon.state.active() == []  # one short of the threshold
        publisher.publish(rate_limited(THRESHOLD))
        await eventually(lambda: len(events) == 2 and len(texts) == 2)
        await eventually(lambda: publisher.stats().sent == THRESHOLD)
        assert publisher.stats().backlog == {url: 0}
    finally:
        for part in (poller, subscriber):
            await part.close()
        await publisher.close()
    assert daemon.records_processed == THRESHOLD  # exactly once
    (suspension,) = [e for e in events if isinstance(e, ReadyQueueSuspension)]
    assert (suspension.site_name, suspension.source) == ("mx.example.com", "ip-1")
    (override,) = [e for e in events if isinstance(e, ConfigOverride)]
    assert (override.option, override.value) == ("max_message_rate", "5/m")
    assert "max_message_rate" in texts[-1] and "5/m" in texts[-1]


async def test_a_wrong_token_is_retried_not_dropped(daemon: TsaDaemon, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{daemon.settings.port}"
    outbox = tmp_path / "outbox"
    refused = TsaPublisher([url], outbox, token="wrong", retry_initial=0.02, retry_max=0.05)
    await refused.start()
    refused.publish(rate_limited(1))
    await eventually(lambda: refused.stats().failures >= 2)
    await refused.close()
    assert daemon.records_processed == 0
    accepted = TsaPublisher([url], outbox, token=TOKEN)
    await accepted.start()
    try:
        await eventually(lambda: daemon.records_processed == 1)
    finally:
        await accepted.close()
