"""A webhook receiver for tests: a real aiohttp server on loopback that verifies signatures.

    async with WebhookReceiver(secret=b"s3cret") as receiver:
        ...  # point [[webhooks]] url at receiver.url
        await receiver.wait_for_records(3)

It can be started late (on a port chosen up front), answer with scripted statuses, or stall
until released, so tests can play a dead, failing or slow endpoint.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson
from aiohttp import web

from mta.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.support.net import free_port
from tests.support.node import wait_until

PATH = "/hooks/mta"


class WebhookReceiver:
    """Records every batch it accepts; `bad_signatures` counts batches that did not verify."""

    def __init__(self, *, secret: bytes | None = None, port: int | None = None) -> None:
        self.secret = secret
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}{PATH}"
        self.batches: list[list[dict[str, Any]]] = []
        self.requests = 0
        self.bad_signatures = 0
        self.statuses: list[int] = []  # answered in order (then 200)
        self.release = asyncio.Event()  # while `stall` is true, requests wait for this
        self.stall = False
        self._runner: web.AppRunner | None = None

    @property
    def records(self) -> list[dict[str, Any]]:
        return [record for batch in self.batches for record in batch]

    def keys(self) -> Counter[tuple[str, str, str]]:
        """How often each (type, id, recipient) arrived: a duplicate shows as a count > 1."""
        return Counter((r["type"], r["id"], r["recipient"]) for r in self.records)

    async def start(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post(PATH, self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> WebhookReceiver:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_for_records(self, count: int, timeout: float = 20.0) -> None:
        await wait_until(lambda: len(self.records) >= count, timeout, f"{count} webhook record(s)")

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        if self.stall:
            await self.release.wait()
        if self.statuses:
            return web.Response(status=self.statuses.pop(0))
        if self.secret is not None and not verify(
            self.secret,
            request.headers.get(TIMESTAMP_HEADER, ""),
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
        ):
            self.bad_signatures += 1
            return web.Response(status=401)
        assert request.content_type == "application/json"
        self.batches.append(orjson.loads(body))
        return web.Response(text="ok")
