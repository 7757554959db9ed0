"""`POST /api/inject/v1`: KumoMTA's inject API, a thin handler over the inject service.

The service builds and stores the messages; this layer refuses early (503 while the node is
starting, draining or out of storage), reads the JSON body (415/413/400), applies
`[http] inject_rate` (429, see `mta.http.inject_rate`) and maps the service's errors:
`InjectError` to its status (400/422) with its message, a `TransientError` (the spool
refused) to 503 with the reason. Every answer but 200 is plain text, as KumoMTA's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

import orjson
from aiohttp import web

from mta.http.auth import IDENTITY
from mta.http.body import read_json
from mta.http.errors import HttpError
from mta.http.health import HealthLike
from mta.http.inject_rate import InjectRateLimiter, recipient_count
from mta.inject.errors import InjectError
from mta.replies import TransientError

INJECT_PATH = "/api/inject/v1"
UNAVAILABLE = 503


class InjectServiceLike(Protocol):
    async def inject(self, body: Any, *, peer_address: str) -> dict[str, Any]:
        """Generate and store the messages; the KumoMTA response dict."""


class InFlight:
    """Counts requests past the door, so that shutdown can let them finish first."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        self.count += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def wait_idle(self, seconds: float) -> bool:
        """Wait until none is in flight, at most `seconds`; False on timeout."""
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


def inject_routes(
    service: InjectServiceLike,
    health: HealthLike,
    in_flight: InFlight,
    *,
    max_body_bytes: int,
    limiter: InjectRateLimiter | None = None,
) -> list[web.RouteDef]:
    """The inject route over `service`, gated by `health` and `limiter` (None: unlimited),
    counted in `in_flight`."""

    async def inject(request: web.Request) -> web.Response:
        reason = health.unavailable_reason()
        if reason is not None:
            raise HttpError(UNAVAILABLE, reason)
        with in_flight.track():
            body = await read_json(request, max_body_bytes)
            if limiter is not None:
                await limiter.admit(request[IDENTITY], recipient_count(body))
            result = await _call(service, body, request.remote or "")
        return web.Response(body=orjson.dumps(result), content_type="application/json")

    return [web.post(INJECT_PATH, inject)]


async def _call(service: InjectServiceLike, body: Any, peer: str) -> dict[str, Any]:
    try:
        return await service.inject(body, peer_address=peer)
    except TransientError as exc:
        raise HttpError(UNAVAILABLE, str(exc)) from exc
    except InjectError as exc:
        raise HttpError(exc.status, exc.message) from exc
