"""TsaConfigPoller against a TSA stand-in: a callback at the first success and on every
change only; the last good text is kept while the TSA fails."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shaping.tsa.client import TsaConfigPoller
from tests.support.tsa_standin import TsaStandIn

FIRST = '["example.com"]\nmax_message_rate = "10/m"  # reason: 421\n'
SECOND = '["example.com"]\nmax_message_rate = "1/m"  # reason: 421 again\n'


@pytest.fixture
async def tsa() -> AsyncIterator[TsaStandIn]:
    standin = TsaStandIn()
    await standin.start()
    yield standin
    await standin.stop()


async def test_the_poller_calls_back_on_change_only(tsa: TsaStandIn) -> None:
    texts: list[str] = []
    tsa.config_text = FIRST
    poller = TsaConfigPoller(tsa.url, texts.append, token="s3cret", interval=0.02)
    await poller.start()
    try:
        await tsa.wait_for(lambda: tsa.config_gets >= 5)
        assert texts == [FIRST]
        tsa.config_text = SECOND
        await tsa.wait_for(lambda: len(texts) == 2)
        gets = tsa.config_gets
        await tsa.wait_for(lambda: tsa.config_gets >= gets + 5)
        assert texts == [FIRST, SECOND]
    finally:
        await poller.close()


async def test_failures_keep_the_last_good_text(tsa: TsaStandIn) -> None:
    texts: list[str] = []
    tsa.config_text = FIRST
    poller = TsaConfigPoller(tsa.url, texts.append, interval=0.02)
    await poller.start()
    try:
        await tsa.wait_for(lambda: texts == [FIRST])
        tsa.config_status, tsa.config_text = 500, "internal error"
        gets = tsa.config_gets
        await tsa.wait_for(lambda: tsa.config_gets >= gets + 5)
        assert poller.text == FIRST and texts == [FIRST]
        tsa.config_status, tsa.config_text = 200, FIRST  # back, unchanged: no callback
        gets = tsa.config_gets
        await tsa.wait_for(lambda: tsa.config_gets >= gets + 3)
        tsa.config_text = SECOND
        await tsa.wait_for(lambda: len(texts) == 2)
    finally:
        await poller.close()
    assert texts == [FIRST, SECOND]


async def test_a_tsa_that_is_down_is_retried(tsa: TsaStandIn) -> None:
    texts: list[str] = []
    await tsa.stop()
    poller = TsaConfigPoller(tsa.url, texts.append, interval=0.02)
    await poller.start()
    try:
        assert not await poller.poll()
        assert poller.text is None
        restarted = TsaStandIn(tsa.port)
        restarted.config_text = FIRST
        await restarted.start()
        try:
            await restarted.wait_for(lambda: texts == [FIRST])
        finally:
            await restarted.stop()
    finally:
        await poller.close()
