"""All the node's webhooks: one record-log listener feeding one `WebhookChannel` per entry."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson

from mta.config import WebhookConfig
from mta.webhooks.channel import ChannelStats, SessionFactory, WebhookChannel

QUEUE_DIR: Final = "webhooks"  # under the spool directory: same volume, same lifetime
CLOSE_TIMEOUT: Final = 5.0  # seconds for the last disk write and a POST in flight at stop


class Webhooks:
    """Durable, signed webhooks fed by log records; see `mta.webhooks.channel`.

    `observe` is the `RecordLog` listener. Records observed before `start()` are kept in
    memory and written once started; records observed after `close()` began are ignored.
    """

    def __init__(
        self,
        configs: Sequence[WebhookConfig],
        spool_path: Path,
        *,
        session_factory: SessionFactory = aiohttp.ClientSession,
    ) -> None:
        self.root = spool_path / QUEUE_DIR
        self.channels = [
            WebhookChannel(config, self.root, session_factory=session_factory) for config in configs
        ]

    def observe(self, record: Mapping[str, Any]) -> None:
        """A RecordLog listener: queue `record` for every webhook that wants its type."""
        kind = record.get("type")
        wanted = [channel for channel in self.channels if kind in channel.types]
        if not wanted:
            return
        # Encoded once, now: another listener may change the dict afterwards.
        line = orjson.dumps(record, default=str)
        for channel in wanted:
            channel.add(line)

    async def start(self) -> None:
        """Open every webhook's disk queue and start its tasks."""
        for channel in self.channels:
            await channel.start()

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:  # noqa: ASYNC109 - a bound
        """Stop every webhook (in parallel, within `timeout`); their backlogs stay on disk."""
        await asyncio.gather(*(channel.close(timeout) for channel in self.channels))

    def stats(self) -> dict[str, ChannelStats]:
        """Counters per webhook key (its name, or a hash of its URL)."""
        return {channel.key: channel.stats() for channel in self.channels}
