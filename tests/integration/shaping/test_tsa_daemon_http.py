"""The TSA daemon over real loopback HTTP: publish, the KumoMTA endpoints, the event
websocket, restart with the saved state, shaping file reloads."""

from __future__ import annotations

import time
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from shaping.tsa.daemon import TsaDaemon
from shaping.tsa.events import (
    ConfigOverride,
    ReadyQueueSuspension,
    SchedQueueBounce,
    message_to_event,
)
from tests.support.tsa import SITE, base_url, daemon_settings, record, wait_until


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[TsaDaemon]:
    server = TsaDaemon(daemon_settings(tmp_path))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def now_record(content: str, **fields: Any) -> dict[str, Any]:
    return record(content, timestamp=time.time(), **fields)


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200
        return await response.json()


async def publish(http: aiohttp.ClientSession, url: str, body: object) -> None:
    async with http.post(f"{url}/publish_log_v1", data=orjson.dumps(body)) as response:
        assert response.status == 200, await response.text()


async def processed(http: aiohttp.ClientSession, url: str, count: int) -> None:
    async def done() -> bool:
        status = await get_json(http, f"{url}/tsa/status")
        return bool(status["records_processed"] >= count)

    await wait_until(done)


async def test_publish_then_read_suspensions_bounces_and_overrides(
    daemon: TsaDaemon, http: aiohttp.ClientSession
) -> None:
    url = base_url(daemon)
    await publish(http, url, now_record("rate limited", source="ip-1"))  # one record
    batch = [
        now_record("all good", code=250, enhanced=(2, 0, 0), type="Delivery"),
        now_record("blocked", code=550, enhanced=(5, 7, 1), type="Bounce",
                   recipient="x@blocked.test", site="mx.blocked.test"),
        now_record("tenant paused", enhanced=(4, 2, 1), queue="acme@example.com"),
    ]  # fmt: skip
    await publish(http, url, batch)
    await processed(http, url, 4)
    suspended = await get_json(http, f"{url}/get_suspension_v1/suspended.json")
    [ready] = suspended["ready_q"]
    assert (ready["site_name"], ready["source"]) == (SITE, "ip-1")
    [sched] = suspended["sched_q"]
    assert (sched["domain"], sched["tenant"]) == ("example.com", "acme")
    [bounce] = await get_json(http, f"{url}/get_bounce_v1/bounced.json")
    assert bounce["domain"] == "blocked.test" and "550 5.7.1 blocked" in bounce["reason"]
    async with http.get(f"{url}/get_config_v1/shaping.toml") as response:
        assert response.status == 200 and response.content_type == "text/plain"
        document = tomllib.loads(await response.text())
    assert document["example.com"]["sources"]["ip-1"]["max_message_rate"] == "1/m"
    status = await get_json(http, f"{url}/tsa/status")
    assert status["ok"] is True
    assert status["active"] == {
        "ReadyQSuspension": 1, "SchedQSuspension": 1, "SchedQBounce": 1, "ConfigOverride": 1,
    }  # fmt: skip
    assert status["rules_files"] == [str(daemon.settings.shaping_files[0])]


async def test_bad_bodies_are_refused(daemon: TsaDaemon, http: aiohttp.ClientSession) -> None:
    url = base_url(daemon)
    for body in (b"not json", b"[1, 2]", b'"text"'):
        async with http.post(f"{url}/publish_log_v1", data=body) as response:
            assert response.status == 400


async def test_subscribers_get_the_backlog_then_new_events(
    daemon: TsaDaemon, http: aiohttp.ClientSession
) -> None:
    url = base_url(daemon)
    await publish(http, url, now_record("blocked", code=550, enhanced=(5, 7, 1)))
    await processed(http, url, 1)
    async with http.ws_connect(f"{url}/subscribe_event_v1") as socket:
        first = message_to_event(await socket.receive_str(timeout=5))
        assert isinstance(first, SchedQueueBounce) and first.domain == "example.com"
        await publish(http, url, now_record("rate limited"))
        kinds = set()
        for _ in range(2):  # the suspension and the configuration override
            event = message_to_event(await socket.receive_str(timeout=5))
            assert event is not None
            kinds.add(event.KIND)
        assert kinds == {"ReadyQSuspension", "ConfigOverride"}
        assert (await get_json(http, f"{url}/tsa/status"))["subscribers"] == 1


async def test_a_restart_keeps_the_state(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    first = TsaDaemon(daemon_settings(tmp_path))
    await first.start()
    await publish(http, base_url(first), now_record("rate limited", source="ip-2"))
    await processed(http, base_url(first), 1)
    await first.stop()
    saved = orjson.loads((tmp_path / "state" / "tsa.json").read_bytes())
    assert saved["version"] == 1 and len(saved["events"]) == 2
    second = TsaDaemon(daemon_settings(tmp_path))
    await second.start()
    try:
        suspended = await get_json(http, f"{base_url(second)}/get_suspension_v1/suspended.json")
        [ready] = suspended["ready_q"]
        assert ready["source"] == "ip-2"
        async with http.ws_connect(f"{base_url(second)}/subscribe_event_v1") as socket:
            backlog = [message_to_event(await socket.receive_str(timeout=5)) for _ in range(2)]
        assert {type(event) for event in backlog} == {ReadyQueueSuspension, ConfigOverride}
    finally:
        await second.stop()


async def test_shaping_files_reload_and_a_bad_one_keeps_the_last_good(
    daemon: TsaDaemon, http: aiohttp.ClientSession
) -> None:
    url = base_url(daemon)
    rules_file = daemon.settings.shaping_files[0]
    rules_file.write_text(
        '["default"]\n[["default".automation]]\nregex = "greylisted"\n'
        'action = "Suspend"\nduration = "10m"\n'
    )
    await wait_until(lambda: _async(daemon.rules.generation == 2))
    await publish(http, url, now_record("greylisted", code=451, enhanced=(4, 7, 1)))
    await processed(http, url, 1)
    suspended = await get_json(http, f"{url}/get_suspension_v1/suspended.json")
    assert len(suspended["ready_q"]) == 1
    rules_file.write_text('["default"]\nno_such_option = 1\n')
    await wait_until(lambda: _async(daemon.rules.last_error is not None))
    status = await get_json(http, f"{url}/tsa/status")
    assert "no_such_option" in status["rules_error"]
    other = {"recipient": "u@other.test", "site": "mx.other.test"}
    await publish(http, url, now_record("greylisted", code=451, enhanced=(4, 7, 1), **other))
    await processed(http, url, 2)
    suspended = await get_json(http, f"{url}/get_suspension_v1/suspended.json")
    assert len(suspended["ready_q"]) == 2  # still the last good rules


async def _async(value: bool) -> bool:
    return value


async def test_stopping_closes_subscribers(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    server = TsaDaemon(daemon_settings(tmp_path))
    await server.start()
    try:
        socket = await http.ws_connect(f"{base_url(server)}/subscribe_event_v1")
        await wait_until(lambda: _async(len(server.hub) == 1))
    finally:
        await server.stop()
    message = await socket.receive(timeout=5)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await socket.close()
    assert len(server.hub) == 0
