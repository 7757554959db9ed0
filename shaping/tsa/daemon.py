"""The TSA daemon (``mta tsa``): KumoMTA's traffic-shaping automation endpoints around
the :class:`AutomationState` engine.

- ``POST /publish_log_v1``: one JSON log record or an array of them; answered 200 once
  queued (503 when the queue is full, so the publisher retries), processed in order;
- ``GET /get_config_v1/shaping.toml``: the active configuration overrides;
- ``GET /get_suspension_v1/suspended.json`` and ``GET /get_bounce_v1/bounced.json``;
- ``GET /subscribe_event_v1``: a websocket sending every active event first, then each
  new or extended one as it happens (no message on expiry: every event carries its
  ``expires``, as in KumoMTA);
- ``GET /tsa/status``: JSON health and counters.

State is saved to ``state_path`` every ``save_interval`` and at shutdown, and restored
at start; shaping files and the tokens file are re-read when they change (a bad shaping
file keeps the last good rules, logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final

import orjson
from aiohttp import WSCloseCode, web

from ..rules import Rules, ShapingRules
from .auth import Access, read_tokens
from .events import EventFormatError, event_to_message, format_expires
from .hub import FileWatch, Hub, Subscriber
from .persist import load_json, save_json, set_aside
from .state import AutomationState

logger = logging.getLogger("shaping.tsa")

DEFAULT_PORT: Final = 8008  # KumoMTA's tsa-daemon port
DEFAULT_TRUSTED: Final = ("127.0.0.1/32", "::1/128")  # KumoMTA's default trusted hosts
MAX_BODY_BYTES: Final = 64 * 1024 * 1024  # a publisher batch of records
SHUTDOWN_TIMEOUT_SECONDS: Final = 5.0  # draining queued records, then open requests
WS_CLOSE_TIMEOUT_SECONDS: Final = 2.0
WS_HEARTBEAT_SECONDS: Final = 30.0
Record = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class DaemonSettings:
    """How to run the daemon; ``shaping_files`` is the complete list, in merge order."""

    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    state_path: Path = Path("var/tsa/state.json")
    shaping_files: tuple[Path, ...] = ()
    trusted_networks: tuple[str, ...] = DEFAULT_TRUSTED
    tokens_file: Path | None = None
    save_interval: float = 30.0
    reload_interval: float = 5.0
    max_pending_batches: int = 10_000


class TsaDaemon:
    """One daemon: ``await start()`` / ``await stop()``, or ``await run(shutdown)``.

    Raises ShapingError (bad shaping files) or OSError (unreadable tokens file) when
    constructed: there is no last good state to keep at start.
    """

    def __init__(self, settings: DaemonSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.rules = ShapingRules.load(settings.shaping_files)
        tokens = read_tokens(settings.tokens_file) if settings.tokens_file else frozenset()
        self.access = Access(settings.trusted_networks, tokens)
        self._clock = clock
        self.state = self._restore()
        self.hub = Hub()
        self.records_processed = 0
        self.last_save: float | None = None
        self._inbox: asyncio.Queue[list[Record]] = asyncio.Queue(settings.max_pending_batches)
        self._rules_watch = FileWatch(settings.shaping_files)
        self._tokens_watch = FileWatch([settings.tokens_file] if settings.tokens_file else [])
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def rules_provider(self) -> Rules:
        return self.rules.rules

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen and start the record worker and the periodic save and reload."""
        self._runner = web.AppRunner(
            self.make_app(), shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS, access_log=None
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, self.settings.host or None, self.settings.port).start()
        self._tasks = [
            asyncio.create_task(self._work(), name="tsa-worker"),
            asyncio.create_task(self._every(self.settings.save_interval, self.save)),
            asyncio.create_task(self._every(self.settings.reload_interval, self._reload)),
        ]
        logger.info("TSA daemon on %s (state %s, rules %s)", self.addresses,
                    self.settings.state_path, ", ".join(self.rules.rules.files))  # fmt: skip

    @property
    def addresses(self) -> list[tuple[str, int]]:
        if self._runner is None:
            return []
        return [(str(name[0]), int(name[1])) for name in self._runner.addresses]

    async def stop(self) -> None:
        """Finish the queued records, close subscribers, save the state, stop listening."""
        self._stopping.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_TIMEOUT_SECONDS):
                await self._inbox.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.save()
        if self._runner is not None:
            await self._runner.cleanup()
        logger.info("TSA daemon stopped (%d records processed)", self.records_processed)

    async def run(self, shutdown: asyncio.Event) -> None:
        """Serve until ``shutdown`` is set, then stop in order."""
        try:
            await self.start()
        except BaseException:
            if self._runner is not None:
                await self._runner.cleanup()
            raise
        try:
            await shutdown.wait()
        finally:
            await self.stop()

    async def save(self) -> None:
        """Write the state file now (atomically; failures are logged, not raised)."""
        snapshot = self.state.to_snapshot()
        try:
            await asyncio.to_thread(save_json, self.settings.state_path, snapshot)
        except OSError as error:
            logger.error("TSA: cannot save state to %s: %s", self.settings.state_path, error)
            return
        self.last_save = self._clock()

    # -- records --------------------------------------------------------------------------

    def process(self, records: list[Record]) -> None:
        """Feed records to the engine in order and tell subscribers what changed."""
        for record in records:
            try:
                events = self.state.observe(record)
            except Exception:  # one odd record must not stop the stream
                logger.exception("TSA: record not processed: %.200r", record)
                continue
            finally:
                self.records_processed += 1
            self.hub.publish(events)

    async def _work(self) -> None:
        while True:
            batch = await self._inbox.get()
            try:
                self.process(batch)
            finally:
                self._inbox.task_done()

    async def _every(self, interval: float, action: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            await action()

    async def _reload(self) -> None:
        if self._rules_watch.changed() and self.rules.reload() is None:
            logger.info("TSA: shaping rules reloaded (%s)", ", ".join(self.rules.rules.files))
        if self._tokens_watch.changed() and self.settings.tokens_file is not None:
            try:
                self.access.tokens = read_tokens(self.settings.tokens_file)
            except OSError as error:
                logger.error("TSA: tokens file not reloaded, keeping the previous: %s", error)

    def _restore(self) -> AutomationState:
        data = load_json(self.settings.state_path)
        if data is None:
            return AutomationState(self.rules_provider, self._clock)
        try:
            state = AutomationState.from_snapshot(data, self.rules_provider, self._clock)
        except (EventFormatError, AttributeError, TypeError, ValueError) as error:
            set_aside(self.settings.state_path, str(error))
            return AutomationState(self.rules_provider, self._clock)
        logger.info("TSA: state restored from %s (%d active)", self.settings.state_path,
                    len(state.active()))  # fmt: skip
        return state

    # -- HTTP -----------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self.access.middleware()], client_max_size=MAX_BODY_BYTES
        )
        app.router.add_post("/publish_log_v1", self._publish)
        app.router.add_get("/get_config_v1/shaping.toml", self._config)
        app.router.add_get("/get_suspension_v1/suspended.json", self._suspensions)
        app.router.add_get("/get_bounce_v1/bounced.json", self._bounces)
        app.router.add_get("/subscribe_event_v1", self._subscribe)
        app.router.add_get("/tsa/status", self._status)
        return app

    async def _publish(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as error:
            raise web.HTTPBadRequest(text=f"body is not JSON: {error}\n") from None
        records = body if isinstance(body, list) else [body]
        if not all(isinstance(record, dict) for record in records):
            raise web.HTTPBadRequest(text="expected a log record or an array of records\n")
        try:
            self._inbox.put_nowait(records)
        except asyncio.QueueFull:
            raise web.HTTPServiceUnavailable(
                text="too many records waiting; retry\n", headers={"Retry-After": "1"}
            ) from None
        return web.Response()

    async def _config(self, _: web.Request) -> web.Response:
        return web.Response(text=self.state.shaping_toml(), content_type="text/plain")

    async def _suspensions(self, _: web.Request) -> web.Response:
        return _json(self.state.suspensions_json())

    async def _bounces(self, _: web.Request) -> web.Response:
        return _json(self.state.bounces_json())

    async def _status(self, _: web.Request) -> web.Response:
        error = self.rules.last_error
        return _json(
            {
                "ok": True,
                "records_processed": self.records_processed,
                "batches_pending": self._inbox.qsize(),
                "active": self.state.counts(),
                "subscribers": len(self.hub),
                "last_save": format_expires(self.last_save) if self.last_save else None,
                "state_path": str(self.settings.state_path),
                "rules_files": list(self.rules.rules.files),
                "rules_error": str(error) if error else None,
            }
        )

    async def _subscribe(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(
            timeout=WS_CLOSE_TIMEOUT_SECONDS, heartbeat=WS_HEARTBEAT_SECONDS
        )
        await socket.prepare(request)
        # Subscribe before sending the backlog: an event made meanwhile may come twice
        # (applying one again is harmless), but none is missed.
        subscriber = self.hub.subscribe()
        try:
            for event in self.state.active():
                await socket.send_str(event_to_message(event))
            await self._serve_subscriber(socket, subscriber)
        except (ConnectionError, RuntimeError) as error:  # the peer went away mid-send
            logger.debug("TSA: subscriber gone: %s", error)
        finally:
            self.hub.unsubscribe(subscriber)
            await socket.close(code=WSCloseCode.GOING_AWAY)
        return socket

    async def _serve_subscriber(self, socket: web.WebSocketResponse, sub: Subscriber) -> None:
        """Until the peer closes, the daemon stops, or the subscriber falls behind."""
        tasks = [
            asyncio.create_task(_pump(socket, sub)),
            asyncio.create_task(_read_until_closed(socket)),
            asyncio.create_task(self._stopping.wait()),
            asyncio.create_task(sub.overflowed.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if sub.overflowed.is_set():
            logger.warning("TSA: a subscriber fell behind; closed (it will reconnect)")


async def _pump(socket: web.WebSocketResponse, subscriber: Subscriber) -> None:
    while True:
        event = await subscriber.queue.get()
        await socket.send_str(event_to_message(event))


async def _read_until_closed(socket: web.WebSocketResponse) -> None:
    async for _ in socket:  # subscribers have nothing to say; this notices their close
        pass


def _json(data: object) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")
