"""Health of the node as the HTTP API reports it: liveness, readiness and KumoMTA's check.

- `GET /livez`: the process answers, so it is alive (200 `OK`); a wedged event loop cannot
  answer at all, which is what the kubelet's timeout detects.
- `GET /readyz` and `GET /api/check-liveness/v1` (KumoMTA's, which load balancers use to
  decide where to send mail): 200 `OK` once spool recovery is done and while the spool can
  take mail and the node is not draining; otherwise 503 with the reason (`waiting for spool
  startup`, `shutting down`, or the spool's own reason such as low free space).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from mta.http.errors import text_response

OK = "OK"
WAITING_FOR_SPOOL = "waiting for spool startup"
SHUTTING_DOWN = "shutting down"


class HealthLike(Protocol):
    def unavailable_reason(self) -> str | None:
        """Why the node cannot take mail now, or None when it can."""


class Phase(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"


class NodeHealth:
    """The node's lifecycle phase plus the storage check; `storage_reason` is cheap."""

    def __init__(self, storage_reason: Callable[[], str | None]) -> None:
        self._storage_reason = storage_reason
        self.phase = Phase.STARTING

    def mark_ready(self) -> None:
        self.phase = Phase.READY

    def mark_stopping(self) -> None:
        self.phase = Phase.STOPPING

    def unavailable_reason(self) -> str | None:
        if self.phase is Phase.STOPPING:
            return SHUTTING_DOWN
        if self.phase is Phase.STARTING:
            return WAITING_FOR_SPOOL
        return self._storage_reason()


def health_routes(health: HealthLike) -> list[web.RouteDef]:
    """The three probe endpoints (no authentication, as KumoMTA's liveness check)."""

    async def livez(_request: web.Request) -> web.Response:
        return text_response(200, OK)

    async def ready(_request: web.Request) -> web.Response:
        reason = health.unavailable_reason()
        return text_response(200, OK) if reason is None else text_response(503, reason)

    return [
        web.get("/livez", livez, allow_head=False),
        web.get("/readyz", ready, allow_head=False),
        web.get("/api/check-liveness/v1", ready, allow_head=False),
    ]
