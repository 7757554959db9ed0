"""The node's side of the TSA daemon: publish log records, follow events, poll overrides.

- :class:`TsaPublisher` (in :mod:`.publisher`): every ``TransientFailure`` and ``Bounce``
  record to every TSA replica, durably, never slowing the caller.
- :class:`TsaSubscriber`: the websocket ``GET <url>/subscribe_event_v1`` (the daemon first
  replays every active event, then sends new ones), reconnecting with capped backoff. A
  reconnect replays the active events again, so ``on_event`` must treat an event it already
  has as an update (suspensions and overrides are keyed, see :meth:`_Event.key`).
- :class:`TsaConfigPoller`: ``GET <url>/get_config_v1/shaping.toml`` every ``interval``,
  keeping the last good text when the TSA is away.

Each logs on the ``shaping.tsa`` logger once per state change, never once per failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

import aiohttp
import orjson

from .events import AutomationEvent, message_to_event
from .link import (
    REQUEST_TIMEOUT,
    RETRY_INITIAL,
    RETRY_MAX,
    TRANSPORT_ERRORS,
    Backoff,
    SessionFactory,
    StateLog,
    auth_headers,
    describe,
    read_token,
)
from .publisher import PUBLISH_PATH, PUBLISHED_TYPES, PublisherStats, TsaPublisher

__all__ = [
    "CONFIG_PATH",
    "PUBLISHED_TYPES",
    "PUBLISH_PATH",
    "SUBSCRIBE_PATH",
    "PublisherStats",
    "TsaConfigPoller",
    "TsaPublisher",
    "TsaSubscriber",
    "read_token",
]

logger = logging.getLogger("shaping.tsa")

SUBSCRIBE_PATH: Final = "/subscribe_event_v1"
CONFIG_PATH: Final = "/get_config_v1/shaping.toml"
HEARTBEAT: Final = 30.0  # websocket ping interval, so a peer that vanished is noticed

EventHandler = Callable[[AutomationEvent], None]
Decoder = Callable[[Any], AutomationEvent | None]


class TsaSubscriber:
    """Follow one TSA's event stream and hand each event to ``on_event``.

    ``decode`` turns one parsed websocket message into an event (None: a kind this node
    does not know, skipped). Messages that fail to parse or decode are logged and skipped.
    """

    def __init__(
        self,
        url: str,
        on_event: EventHandler,
        *,
        token: str | None = None,
        decode: Decoder = message_to_event,
        session_factory: SessionFactory = aiohttp.ClientSession,
        request_timeout: float = REQUEST_TIMEOUT,
        heartbeat: float = HEARTBEAT,
        retry_initial: float = RETRY_INITIAL,
        retry_max: float = RETRY_MAX,
    ) -> None:
        self.url = url.rstrip("/") + SUBSCRIBE_PATH
        self.received = 0  # events handed to on_event, for metrics
        self._on_event = on_event
        self._decode = decode
        self._headers = auth_headers(token)
        self._session_factory = session_factory
        self._request_timeout = request_timeout
        self._heartbeat = heartbeat
        self._backoff = Backoff(retry_initial, retry_max)
        self._state = StateLog(f"TSA {url} (events)")
        self._connected = False
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """True while the websocket is open."""
        return self._connected

    async def start(self) -> None:
        """Start following; connection failures are retried in the background."""
        self._task = asyncio.create_task(self._run(), name=f"tsa-subscribe {self.url}")

    async def close(self) -> None:
        """Stop following and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        self._connected = False

    async def _run(self) -> None:
        async with self._session_factory() as session:
            while True:
                try:
                    await self._follow(session)
                    reason = "connection closed by the TSA"
                except TRANSPORT_ERRORS as error:
                    reason = describe(error)
                self._connected = False
                self._state.failed(f"events lost ({reason})" if self._state.healthy else reason)
                await asyncio.sleep(self._backoff.delay())

    async def _follow(self, session: aiohttp.ClientSession) -> None:
        async with asyncio.timeout(self._request_timeout):
            socket = await session.ws_connect(
                self.url, headers=self._headers, heartbeat=self._heartbeat
            )
        async with socket:
            self._connected = True
            self._state.ok("connected")
            self._backoff.reset()
            async for message in socket:
                if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    self._dispatch(message.data)
                elif message.type is aiohttp.WSMsgType.ERROR:
                    raise aiohttp.ClientError(f"websocket error: {socket.exception()}")

    def _dispatch(self, data: str | bytes) -> None:
        try:
            event = self._decode(orjson.loads(data))
        except (ValueError, TypeError) as error:  # not JSON, or not an event
            logger.warning("TSA %s: skipped a message: %s: %.200r", self.url, error, data)
            return
        if event is None:
            return
        self.received += 1
        try:
            self._on_event(event)
        except Exception:  # one bad event must not end the subscription
            logger.exception("TSA %s: handling %r failed", self.url, event)


class TsaConfigPoller:
    """Fetch the TSA's generated shaping overrides every ``interval`` seconds.

    ``on_text`` is called with the shaping.toml text after the first successful fetch and
    then whenever the text changes. ``text`` is the last good text (None before any).
    """

    def __init__(
        self,
        url: str,
        on_text: Callable[[str], None],
        *,
        token: str | None = None,
        interval: float = 10.0,
        session_factory: SessionFactory = aiohttp.ClientSession,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.url = url.rstrip("/") + CONFIG_PATH
        self.text: str | None = None
        self._on_text = on_text
        self._headers = auth_headers(token)
        self._interval = interval
        self._session_factory = session_factory
        self._request_timeout = request_timeout
        self._state = StateLog(f"TSA {url} (shaping overrides)")
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start polling (the first fetch happens at once, in the background)."""
        self._session = self._session_factory()
        self._task = asyncio.create_task(self._run(), name=f"tsa-poll {self.url}")

    async def close(self) -> None:
        """Stop polling."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def poll(self) -> bool:
        """Fetch once; True when the TSA answered (whether or not the text changed)."""
        text = await self._fetch()
        if text is None:
            return False
        if text != self.text:
            self.text = text  # kept even if on_text fails: a bad text is not retried forever
            try:
                self._on_text(text)
            except Exception:
                logger.exception("TSA %s: applying the shaping overrides failed", self.url)
        return True

    async def _run(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self._interval)

    async def _fetch(self) -> str | None:
        assert self._session is not None, "start() first"
        try:
            async with (
                asyncio.timeout(self._request_timeout),
                self._session.get(self.url, headers=self._headers) as response,
            ):
                text = await response.text()
        except TRANSPORT_ERRORS as error:
            self._state.failed(describe(error))
            return None
        if response.status != 200:
            self._state.failed(f"HTTP {response.status}")
            return None
        self._state.ok()
        return text
