"""`/api/admin/suppression/v1` over a `Suppression` (wire format in `mta.suppression.api`).

The server's auth middleware admits admins only (the path is under `/api/admin/`). A store
that cannot answer (Redis away) is a 503 with the reason, never a 5xx from a bug.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson
from aiohttp import web

from mta.http.body import read_json
from mta.http.errors import HttpError, text_response
from mta.queue.admin_api import RequestError
from mta.suppression import api
from mta.suppression.entry import StoreUnavailable
from mta.suppression.service import Suppression

MAX_BODY_BYTES = 64 * 1024
BODY_ERROR = "Failed to deserialize the JSON body into the target type"  # as admin_routes
QUERY_ERROR = "Failed to deserialize query string"
T = TypeVar("T")


def add_suppression_routes(app: web.Application, suppression: Suppression) -> None:
    """Register GET, POST and DELETE of `SUPPRESSION_PATH` on `app`."""
    routes = _Routes(suppression)
    app.add_routes(
        [
            web.get(api.SUPPRESSION_PATH, routes.list, allow_head=False),
            web.post(api.SUPPRESSION_PATH, routes.add),
            web.delete(api.SUPPRESSION_PATH, routes.remove),
        ]
    )


class _Routes:
    def __init__(self, suppression: Suppression) -> None:
        self._suppression = suppression

    async def list(self, request: web.Request) -> web.Response:
        tenant, recipient = _checked(lambda: api.parse_list(request.query), QUERY_ERROR)
        entries = await _available(self._suppression.entries(tenant, recipient))
        return _json([entry.to_api() for entry in entries])

    async def add(self, request: web.Request) -> web.Response:
        body = await read_json(request, MAX_BODY_BYTES)
        wanted = _checked(lambda: api.parse_add(body), BODY_ERROR)
        entry = await _available(
            self._suppression.add(
                wanted.recipient,
                wanted.tenant,
                wanted.reason,
                wanted.classification,
                source="admin",
                ttl=wanted.ttl,
            )
        )
        return _json(entry.to_api())

    async def remove(self, request: web.Request) -> web.Response:
        tenant, recipient = _checked(lambda: api.parse_remove(request.query), QUERY_ERROR)
        if not await _available(self._suppression.remove(recipient, tenant)):
            raise HttpError(web.HTTPNotFound.status_code, f"{recipient} is not suppressed")
        return text_response(web.HTTPOk.status_code, f"removed {recipient}")


def _checked(parse: Callable[[], T], context: str) -> T:
    try:
        return parse()
    except RequestError as exc:
        raise HttpError(web.HTTPBadRequest.status_code, f"{context}: {exc}") from None


async def _available(call: Awaitable[T]) -> T:
    try:
        return await call
    except StoreUnavailable:
        unavailable = web.HTTPServiceUnavailable.status_code
        raise HttpError(unavailable, "suppression store unavailable") from None


def _json(answer: object) -> web.Response:
    return web.Response(body=orjson.dumps(answer), content_type="application/json")
