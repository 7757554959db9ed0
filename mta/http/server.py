"""The HTTP API server: aiohttp on every `[http] listen` address, in the node's event loop.

Endpoints (KumoMTA's where KumoMTA has them):

- `POST /api/inject/v1` (any valid credential or a trusted network; `[http] inject_rate`)
- `GET /api/check-liveness/v1`, `GET /livez`, `GET /readyz` (no authentication)
- `GET /metrics`, `/api/admin/*` (a trusted network or a user in `admin_users`)
- `POST /api/internal/accept/v1` (the same: a draining peer hands over its mail, `mta.drain`)
- `GET /api-docs/openapi.json` (any valid credential or a trusted network)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from mta.config import HttpConfig
from mta.http.auth import Access, Authenticator, auth_middleware
from mta.http.credentials import RELOAD_CHECK_SECONDS, CredentialStore
from mta.http.errors import error_middleware
from mta.http.health import HealthLike, health_routes
from mta.http.inject_rate import InjectRateLimiter
from mta.http.inject_route import InFlight, InjectServiceLike, inject_routes
from mta.http.openapi import OPENAPI_PATH, openapi_document
from mta.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from mta.metrics import Metrics
from mta.units import parse_hostport

logger = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/livez", "/readyz", "/api/check-liveness/v1"})
ADMIN_PREFIX = "/api/admin/"
INTERNAL_PREFIX = "/api/internal/"  # node to node (drain handover): admin rights
METRICS_PATH = "/metrics"
# By the time the server stops, the node has drained; requests still open get this long.
SHUTDOWN_TIMEOUT_SECONDS = 5.0


def access_for(path: str) -> Access:
    """Who may call `path` (the route's canonical path, or the raw path when unrouted)."""
    if path in PUBLIC_PATHS:
        return Access.PUBLIC
    if path.startswith((ADMIN_PREFIX, INTERNAL_PREFIX)) or path == METRICS_PATH:
        return Access.ADMIN
    return Access.USER


class HttpServer:
    """The node's HTTP API; `start()` binds, `stop()` closes listeners and open requests."""

    def __init__(
        self,
        config: HttpConfig,
        *,
        inject: InjectServiceLike,
        health: HealthLike,
        metrics: Metrics,
        admin_setup: Callable[[web.Application], None] | None = None,
        admin_openapi: Mapping[str, Any] | None = None,
        credentials_reload_seconds: float = RELOAD_CHECK_SECONDS,
    ) -> None:
        self._config = config
        store = CredentialStore(config, reload_seconds=credentials_reload_seconds)
        self._auth = Authenticator(config, store)
        self._openapi = orjson.dumps(openapi_document(admin_openapi))
        self._metrics = metrics
        self.app = web.Application(
            client_max_size=config.max_body_bytes,
            middlewares=[error_middleware, auth_middleware(self._auth, _route_access)],
        )
        self.app.add_routes(health_routes(health))
        self._in_flight = InFlight()
        self.app.add_routes(
            inject_routes(
                inject,
                health,
                self._in_flight,
                max_body_bytes=config.max_body_bytes,
                limiter=InjectRateLimiter.from_config(config),
            )
        )
        self.app.add_routes(
            [
                web.get(METRICS_PATH, self._serve_metrics, allow_head=False),
                web.get(OPENAPI_PATH, self._serve_openapi, allow_head=False),
            ]
        )
        if admin_setup is not None:
            admin_setup(self.app)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Read the credential files, then bind every listen address (port 0 = any)."""
        self._auth.load()
        runner = web.AppRunner(self.app, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
        await runner.setup()
        self._runner = runner
        try:
            for listen in self._config.listen:
                host, port = parse_hostport(listen)
                await web.TCPSite(runner, host or None, port).start()
        except BaseException:
            await self.stop()
            raise
        logger.info("HTTP API on %s", ", ".join(f"{h}:{p}" for h, p in self.addresses))

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound (host, port) pairs, once started."""
        if self._runner is None:
            return []
        return [(str(name[0]), int(name[1])) for name in self._runner.addresses]

    @property
    def injects_in_flight(self) -> int:
        """Inject requests past the door and not answered yet."""
        return self._in_flight.count

    async def wait_for_injects(self, seconds: float) -> bool:
        """Wait for inject requests already past the door (at most `seconds`).

        Call it once the health says the node is stopping, so no new ones come in.
        """
        if self._in_flight.count:
            logger.info("waiting for %d inject requests", self._in_flight.count)
        finished = await self._in_flight.wait_idle(seconds)
        if not finished:
            logger.warning(
                "%d inject requests still open after %.1fs", self._in_flight.count, seconds
            )
        return finished

    async def stop(self) -> None:
        """Close the listeners, let open requests finish (briefly), then close them."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _serve_metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=self._metrics.render())
        response.headers["Content-Type"] = METRICS_CONTENT_TYPE
        return response

    async def _serve_openapi(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._openapi, content_type="application/json")


def _route_access(request: web.Request) -> Access:
    resource = request.match_info.route.resource
    return access_for(resource.canonical if resource is not None else request.path)
