"""A recording, scriptable stand-in for the TSA daemon's HTTP side, on 127.0.0.1.

It records what nodes publish (``POST /publish_log_v1``), serves a shaping.toml text
(``GET /get_config_v1/shaping.toml``) and an event websocket (``GET /subscribe_event_v1``:
every message of ``replay`` on connect, then whatever :meth:`TsaStandIn.broadcast` sends).
It can answer errors for a while, hold requests until released, refuse content, and be
stopped and started again on the same port.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from tests.support.net import free_port

HOST = "127.0.0.1"
WAIT_TIMEOUT = 20.0  # seconds a test waits for a condition before failing


class TsaStandIn:
    """See the module docstring; ``url`` is valid before :meth:`start` (the port is fixed)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.records: list[dict[str, Any]] = []  # accepted records, in arrival order
        self.batch_sizes: list[int] = []
        self.posts = 0  # every POST, answered or not
        self.authorizations: list[str | None] = []
        self.fail_next = 0  # answer this many POSTs with 500 (recording nothing)
        self.stall_next = 0  # hold this many POSTs for stall_seconds, then 503
        self.stall_seconds = 0.0
        self.hold = asyncio.Event()  # POSTs wait here while it is clear
        self.hold.set()
        self.refuse: Callable[[dict[str, Any]], bool] = lambda record: False  # -> 400
        self.config_text = ""
        self.config_status = 200
        self.config_gets = 0
        self.replay: list[str] = []
        self.sockets: set[web.WebSocketResponse] = set()
        self.connections = 0
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/publish_log_v1", self._publish)
        app.router.add_get("/get_config_v1/shaping.toml", self._config)
        app.router.add_get("/subscribe_event_v1", self._subscribe)
        app.on_shutdown.append(self._close_sockets)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, self.port).start()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def broadcast(self, message: str) -> None:
        for socket in list(self.sockets):
            await socket.send_str(message)

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Until ``predicate()`` holds, re-checked after every request; fails after a bound."""
        async with asyncio.timeout(WAIT_TIMEOUT), self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _publish(self, request: web.Request) -> web.Response:
        self.posts += 1
        self.authorizations.append(request.headers.get("Authorization"))
        await self._notify()
        await self.hold.wait()
        response = await self._answer(await request.read())
        await self._notify()
        return response

    async def _answer(self, body: bytes) -> web.Response:
        if self.stall_next:
            self.stall_next -= 1
            await asyncio.sleep(self.stall_seconds)
            return web.Response(status=503)
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=500)
        batch = orjson.loads(body)
        if not isinstance(batch, list) or any(self.refuse(record) for record in batch):
            return web.Response(status=400)
        self.records.extend(batch)
        self.batch_sizes.append(len(batch))
        return web.Response(status=200)

    async def _config(self, request: web.Request) -> web.Response:
        self.config_gets += 1
        await self._notify()
        return web.Response(status=self.config_status, text=self.config_text)

    async def _subscribe(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.authorizations.append(request.headers.get("Authorization"))
        for message in self.replay:
            await socket.send_str(message)
        self.sockets.add(socket)
        self.connections += 1
        await self._notify()
        try:
            async for _ in socket:  # nodes send nothing; this waits for the close
                pass
        finally:
            self.sockets.discard(socket)
            await self._notify()
        return socket

    async def _close_sockets(self, app: web.Application) -> None:
        for socket in list(self.sockets):
            await socket.close()


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT_TIMEOUT) -> None:
    """Until ``predicate()`` holds (polled every 10 ms), for state outside the stand-in."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)
