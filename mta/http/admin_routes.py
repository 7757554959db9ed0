"""The admin endpoints of KumoMTA's HTTP API (`/api/admin/*`) over a `QueueAdmin`.

Who may call them is the server's business (its auth middleware); this module only speaks the
wire format (`mta.queue.admin_api`). Answers are JSON; refusals are plain-text reasons raised
as `HttpError`, which the server's error middleware turns into responses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web

from mta.http.body import read_json
from mta.http.errors import HttpError, text_response
from mta.queue import admin_api as api
from mta.queue.admin import QueueAdmin
from mta.queue.admin_openapi import (
    ADMIN_OPENAPI_PATHS,
    BOUNCE_PATH,
    INSPECT_MESSAGE_PATH,
    INSPECT_SCHED_PATH,
    READY_STATES_PATH,
    SUMMARY_PATH,
    SUSPEND_PATH,
    SUSPEND_READY_PATH,
)
from mta.queue.rules import AdminRule

__all__ = ["ADMIN_OPENAPI_PATHS", "add_admin_routes"]

MAX_BODY_BYTES = 64 * 1024  # an admin request is a few hundred bytes
# axum's words for the same refusals, which KumoMTA clients may already match on.
BODY_ERROR = "Failed to deserialize the JSON body into the target type"
QUERY_ERROR = "Failed to deserialize query string"

T = TypeVar("T")


def add_admin_routes(app: web.Application, admin: QueueAdmin) -> None:
    """Register every admin endpoint of `ADMIN_OPENAPI_PATHS` on `app`."""
    routes = _AdminRoutes(admin)
    app.add_routes(
        [
            web.post(BOUNCE_PATH, routes.bounce),
            web.get(BOUNCE_PATH, routes.bounce_list, allow_head=False),
            web.delete(BOUNCE_PATH, routes.bounce_cancel),
            web.post(SUSPEND_PATH, routes.suspend),
            web.get(SUSPEND_PATH, routes.suspend_list, allow_head=False),
            web.delete(SUSPEND_PATH, routes.suspend_cancel),
            web.post(SUSPEND_READY_PATH, routes.suspend_ready),
            web.get(SUSPEND_READY_PATH, routes.suspend_ready_list, allow_head=False),
            web.delete(SUSPEND_READY_PATH, routes.suspend_ready_cancel),
            web.get(INSPECT_MESSAGE_PATH, routes.inspect_message, allow_head=False),
            web.get(INSPECT_SCHED_PATH, routes.inspect_sched_q, allow_head=False),
            web.get(READY_STATES_PATH, routes.ready_states, allow_head=False),
            web.get(SUMMARY_PATH, routes.summary, allow_head=False),
        ]
    )


class _AdminRoutes:
    def __init__(self, admin: QueueAdmin) -> None:
        self._admin = admin

    # -- bounce ----------------------------------------------------------------------------

    async def bounce(self, request: web.Request) -> web.Response:
        body, now = await _body(request), self._admin.now()
        wanted = _checked(lambda: api.parse_bounce(body, now), BODY_ERROR)
        rule = await self._admin.bounce(
            wanted.matcher,
            reason=wanted.reason,
            expires=wanted.expires,
            suppress_logging=wanted.suppress_logging,
        )
        return _json(api.rule_created(rule, with_counts=True))

    async def bounce_list(self, _request: web.Request) -> web.Response:
        return self._list(self._admin.bounces(), api.bounce_entry)

    async def bounce_cancel(self, request: web.Request) -> web.Response:
        rule_id = await _rule_id(request)
        return _removed(self._admin.cancel_bounce(rule_id), "bounce", rule_id)

    # -- suspend ---------------------------------------------------------------------------

    async def suspend(self, request: web.Request) -> web.Response:
        body, now = await _body(request), self._admin.now()
        wanted = _checked(lambda: api.parse_suspend(body, now), BODY_ERROR)
        rule = self._admin.suspend(wanted.matcher, reason=wanted.reason, expires=wanted.expires)
        return _json(api.rule_created(rule))

    async def suspend_list(self, _request: web.Request) -> web.Response:
        return self._list(self._admin.suspensions(), api.suspend_entry)

    async def suspend_cancel(self, request: web.Request) -> web.Response:
        rule_id = await _rule_id(request)
        return _removed(self._admin.cancel_suspension(rule_id), "suspend", rule_id)

    # -- suspend-ready-q -------------------------------------------------------------------

    async def suspend_ready(self, request: web.Request) -> web.Response:
        body, now = await _body(request), self._admin.now()
        wanted = _checked(lambda: api.parse_suspend_ready(body, now), BODY_ERROR)
        rule = self._admin.suspend_ready(wanted.name, reason=wanted.reason, expires=wanted.expires)
        return _json(api.rule_created(rule))

    async def suspend_ready_list(self, _request: web.Request) -> web.Response:
        return self._list(self._admin.ready_suspensions(), api.ready_entry)

    async def suspend_ready_cancel(self, request: web.Request) -> web.Response:
        rule_id = await _rule_id(request)
        return _removed(self._admin.cancel_ready_suspension(rule_id), "suspend-ready-q", rule_id)

    # -- inspection ------------------------------------------------------------------------

    async def inspect_message(self, request: web.Request) -> web.Response:
        query = request.query
        msg_id = _checked(lambda: api.required_param(query, "id"), QUERY_ERROR)
        want_body = _checked(lambda: api.parse_bool(query, "want_body"), QUERY_ERROR)
        answer = self._admin.inspect_message(msg_id, want_body=want_body)
        if answer is None:
            raise HttpError(web.HTTPNotFound.status_code, f"no such message {msg_id}")
        return _json(answer)

    async def inspect_sched_q(self, request: web.Request) -> web.Response:
        query = request.query
        name = _checked(lambda: api.required_param(query, "queue_name"), QUERY_ERROR)
        want_body = _checked(lambda: api.parse_bool(query, "want_body"), QUERY_ERROR)
        limit = _checked(lambda: api.parse_limit(query), QUERY_ERROR)
        answer = self._admin.inspect_scheduled_queue(name, want_body=want_body, limit=limit)
        if answer is None:
            raise HttpError(web.HTTPNotFound.status_code, f"no such queue {name}")
        return _json(answer)

    async def ready_states(self, request: web.Request) -> web.Response:
        # KumoMTA's client sends `queues=a,b`; repeating the parameter works too.
        values = request.query.getall("queues", [])
        names = {name.strip() for value in values for name in value.split(",") if name.strip()}
        return _json(self._admin.ready_queue_states(names))

    async def summary(self, _request: web.Request) -> web.Response:
        return _json(self._admin.summary())

    def _list(
        self, rules: list[AdminRule], entry: Callable[[AdminRule, float], Any]
    ) -> web.Response:
        now = self._admin.now()
        return _json([entry(rule, now) for rule in rules])


async def _body(request: web.Request) -> Any:
    return await read_json(request, MAX_BODY_BYTES)


async def _rule_id(request: web.Request) -> str:
    body = await _body(request)
    return _checked(lambda: api.parse_cancel(body), BODY_ERROR)


def _checked(parse: Callable[[], T], context: str) -> T:
    """`parse()`, its RequestError answered 400 with the field it names."""
    try:
        return parse()
    except api.RequestError as exc:
        raise HttpError(web.HTTPBadRequest.status_code, f"{context}: {exc}") from None


def _removed(found: bool, noun: str, rule_id: str) -> web.Response:
    """KumoMTA's answers to a DELETE: 200 "removed <id>", or 404."""
    if not found:
        raise HttpError(web.HTTPNotFound.status_code, f"{noun} entry {rule_id} not found")
    return text_response(web.HTTPOk.status_code, f"removed {rule_id}")


def _json(answer: Any) -> web.Response:
    return web.Response(body=orjson.dumps(answer), content_type="application/json")
