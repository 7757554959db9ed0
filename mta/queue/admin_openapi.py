"""OpenAPI 3.1 path items of the admin API, with exact request and answer schemas.

The shapes are KumoMTA's (`docs/reference/http/kumod/`), plus the fields we add, each noted.
Errors are short plain-text reasons, as KumoMTA's. `mta.http.openapi` merges these paths into
`/api-docs/openapi.json` and adds the answers of the auth middleware (401, 403).
"""

from __future__ import annotations

from typing import Any

from mta.queue.admin_api import DURATION_PATTERN, EXPIRES_PATTERN, MATCHER_FIELDS
from mta.queue.inspect import AGE_BUCKETS

BOUNCE_PATH = "/api/admin/bounce/v1"
SUSPEND_PATH = "/api/admin/suspend/v1"
SUSPEND_READY_PATH = "/api/admin/suspend-ready-q/v1"
INSPECT_MESSAGE_PATH = "/api/admin/inspect-message/v1"
READY_STATES_PATH = "/api/admin/ready-q-states/v1"
INSPECT_SCHED_PATH = "/api/admin/inspect-sched-q/v1"
SUMMARY_PATH = "/api/admin/queue-summary/v1"

_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_COUNT = {"type": "integer", "minimum": 0}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_UUID = {"type": "string", "format": "uuid"}
_STRINGS = {"type": "array", "items": _STRING}
_COUNTS = {"type": "object", "additionalProperties": _COUNT}
_HUMAN_DURATION = {"type": "string", "description": 'Time left, e.g. "4m 59s 998ms"'}


def _object(properties: dict[str, Any], *optional: str, closed: bool = True) -> dict[str, Any]:
    """An object schema; every property is required except those named `optional`."""
    schema: dict[str, Any] = {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": _STRING}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


# -- requests ------------------------------------------------------------------------------

_LIFETIME = {
    "duration": {
        "type": ["string", "number", "null"],
        "pattern": DURATION_PATTERN,
        "minimum": 0,
        "description": 'How long the rule lasts: "20m", "1h 30m", or seconds; default "5m"',
    },
    "expires": {
        **_NULLABLE_TIME,
        "pattern": EXPIRES_PATTERN,
        "description": "When the rule ends (RFC 3339); wins over duration",
    },
}
_CRITERIA = {
    **{name: {**_NULLABLE_STRING, "description": f"Match this {name}"} for name in MATCHER_FIELDS},
    "queue_names": {**_STRINGS, "description": "Exact scheduled queue names; wins over the rest"},
}
_BOUNCE_REQUEST = _object(
    {
        **_CRITERIA,
        "reason": {**_STRING, "description": "Logged with every AdminBounce record"},
        **_LIFETIME,
        "suppress_logging": {"type": "boolean", "default": False},
    },
    *_CRITERIA,
    *_LIFETIME,
    "suppress_logging",
)
_SUSPEND_REQUEST = _object(
    {**_CRITERIA, "reason": _STRING, **_LIFETIME}, *_CRITERIA, *_LIFETIME, closed=False
)
_SUSPEND_READY_REQUEST = _object(
    {
        "name": {**_STRING, "description": "A ready queue (site) name"},
        "reason": _STRING,
        **_LIFETIME,
    },
    *_LIFETIME,
    closed=False,
)
_CANCEL_REQUEST = _object({"id": _UUID}, closed=False)

# -- answers -------------------------------------------------------------------------------

_CREATED = _object({"id": _UUID})
_BOUNCE_CREATED = _object(
    {"id": _UUID, "bounced": _COUNTS, "total_bounced": _COUNT}  # counts of the first sweep
)
_RULE_CRITERIA = {"id": _UUID, **{name: _NULLABLE_STRING for name in MATCHER_FIELDS}}
_BOUNCE_ENTRY = _object(
    {
        **_RULE_CRITERIA,
        "queue_names": _STRINGS,  # ours
        "reason": _STRING,
        "duration": _HUMAN_DURATION,
        "bounced": _COUNTS,
        "total_bounced": _COUNT,
    }
)
_SUSPEND_ENTRY = _object(
    {**_RULE_CRITERIA, "queue_names": _STRINGS, "reason": _STRING, "duration": _HUMAN_DURATION}
)
_READY_ENTRY = _object(
    {"id": _UUID, "name": _STRING, "reason": _STRING, "duration": _HUMAN_DURATION, "expires": _TIME}
)
_MESSAGE_INFORMATION = _object(
    {
        "sender": _STRING,
        "recipient": {"oneOf": [_STRING, _STRINGS], "description": "One, or several"},
        "meta": {"type": "object"},
        "data": {**_NULLABLE_STRING, "description": "The message, when want_body=true"},
        "due": _TIME,
        "num_attempts": _COUNT,
    },
    "due",
    "num_attempts",
)
_LEG = _object(
    {
        "queue_name": _STRING,
        "recipients": _STRINGS,
        "due": _TIME,
        "num_attempts": _COUNT,
        "last_reply": _NULLABLE_STRING,
        "state": {"enum": ["scheduled", "ready", "in_flight"]},
        "ready_queue": _NULLABLE_STRING,
    }
)
_INSPECT_MESSAGE = _object(
    {
        "id": _STRING,
        "message": {
            **_MESSAGE_INFORMATION,
            "properties": {
                **_MESSAGE_INFORMATION["properties"],
                "created": _TIME,  # ours
                "queues": {"type": "array", "items": _LEG},  # ours: one entry per domain
            },
            "required": [*_MESSAGE_INFORMATION["required"], "created", "queues"],
        },
    }
)
_INSPECT_QUEUE = _object(
    {
        "queue_name": _STRING,
        "messages": {
            "type": "array",
            "items": _object({"id": _STRING, "message": _MESSAGE_INFORMATION}),
        },
        "num_scheduled": _COUNT,
        "queue_config": {"type": "object"},
        "delayed_metric": _COUNT,
        "now": _TIME,
        "last_changed": _TIME,
    }
)
_QUEUE_STATE = _object({"context": _STRING, "since": _TIME})
_READY_STATES = _object(
    {
        "states_by_ready_queue": {
            "type": "object",
            "additionalProperties": {"type": "object", "additionalProperties": _QUEUE_STATE},
        },
        "counts_by_ready_queue": {  # ours
            "type": "object",
            "additionalProperties": _object({"ready_count": _COUNT, "in_flight": _COUNT}),
        },
    }
)
_AGES = _object(dict.fromkeys(AGE_BUCKETS, _COUNT))
_TALLY = {"count": _COUNT, "recipients": _COUNT, "oldest": _NULLABLE_TIME, "ages": _AGES}
_SUMMARY = _object(
    {
        "now": _TIME,
        "buckets": {**_STRINGS, "description": "The age buckets, youngest first"},
        "scheduled": {
            "type": "object",
            "additionalProperties": _object({**_TALLY, "next_due": _NULLABLE_TIME}),
        },
        "ready": {
            "type": "object",
            "additionalProperties": _object(
                {**_TALLY, "in_flight": _COUNT, "suspended": {"type": "boolean"}}
            ),
        },
        "total": _object({"count": _COUNT, "recipients": _COUNT, "ages": _AGES}),
        "rules": {
            "type": "array",
            "description": "Bounces and suspensions in force (admin or automation)",
            "items": _object(
                {
                    "kind": {"enum": ["ready_suspension", "suspension", "bounce"]},
                    "id": _STRING,
                    "target": _STRING,
                    "reason": _STRING,
                    "expires": _TIME,
                }
            ),
        },
        "shaping_overrides": {
            "type": "array",
            "description": "Egress path settings changed by automation, until they expire",
            "items": _object(
                {
                    "origin": _STRING,
                    "rule_hash": _STRING,
                    "reason": _STRING,
                    "expires": _TIME,
                    "domain": _STRING,
                    "site_name": _STRING,
                    "source": _NULLABLE_STRING,
                    "mx_rollup": {"type": "boolean"},
                    "option": _STRING,
                    "value": {},
                }
            ),
        },
    },
    "shaping_overrides",
)

# -- operations ----------------------------------------------------------------------------

_BAD_REQUEST = _text("The body or a query parameter is invalid; the text names the field")
_BODY_ERRORS = {
    "400": _BAD_REQUEST,
    "413": _text("Body larger than the limit"),
    "415": _text("Content-Type is not JSON"),
}


def _operation(summary: str, op_id: str, responses: dict[str, Any], **extra: Any) -> Any:
    return {
        "summary": summary,
        "operationId": op_id,
        "tags": ["admin"],
        **extra,
        "responses": responses,
    }


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> Any:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}  # fmt: skip


def _rules(noun: str, op: str, request: Any, created: Any, entry: Any) -> dict[str, Any]:
    """POST (create), GET (list), DELETE (cancel by id) of one kind of rule."""
    return {
        "post": _operation(
            f"Create a {noun}",
            f"{op}_create",
            {"200": _json("Created", created), **_BODY_ERRORS},
            requestBody=_body(request),
        ),
        "get": _operation(
            f"List the active {noun}s",
            f"{op}_list",
            {"200": _json("Active rules", {"type": "array", "items": entry})},
        ),
        "delete": _operation(
            f"Cancel a {noun}",
            f"{op}_cancel",
            {
                "200": _text('Removed: "removed <id>"'),
                **_BODY_ERRORS,
                "404": _text("No active rule with this id (expired, or never was)"),
            },
            requestBody=_body(_CANCEL_REQUEST),
        ),
    }


_WANT_BODY = _query("want_body", {"type": "boolean", "default": False}, "Include the message")

ADMIN_OPENAPI_PATHS: dict[str, Any] = {
    BOUNCE_PATH: _rules("bounce", "bounce_v1", _BOUNCE_REQUEST, _BOUNCE_CREATED, _BOUNCE_ENTRY),
    SUSPEND_PATH: _rules(
        "scheduled-queue suspension", "suspend_v1", _SUSPEND_REQUEST, _CREATED, _SUSPEND_ENTRY
    ),
    SUSPEND_READY_PATH: _rules(
        "ready-queue suspension",
        "suspend_ready_q_v1",
        _SUSPEND_READY_REQUEST,
        _CREATED,
        _READY_ENTRY,
    ),
    INSPECT_MESSAGE_PATH: {
        "get": _operation(
            "Show a queued message",
            "inspect_message_v1",
            {
                "200": _json("The message", _INSPECT_MESSAGE),
                "400": _BAD_REQUEST,
                "404": _text("No such message in the queues"),
            },
            parameters=[_query("id", _STRING, "The message id", required=True), _WANT_BODY],
        )
    },
    INSPECT_SCHED_PATH: {
        "get": _operation(
            "Show the messages waiting in a scheduled queue",
            "inspect_sched_q_v1",
            {
                "200": _json("The queue", _INSPECT_QUEUE),
                "400": _BAD_REQUEST,
                "404": _text("Nothing is queued under this name"),
            },
            parameters=[
                _query("queue_name", _STRING, "campaign:tenant@domain", required=True),
                _WANT_BODY,
                _query("limit", {"type": "integer", "minimum": 0}, "At most this many messages"),
            ],
        )
    },
    READY_STATES_PATH: {
        "get": _operation(
            "States of the ready queues",
            "ready_q_states_v1",
            {"200": _json("States and counts", _READY_STATES)},
            parameters=[_query("queues", _STRING, "Comma-separated names; default: all")],
        )
    },
    SUMMARY_PATH: {
        "get": _operation(
            "Counts and ages of the scheduled and ready queues (like Postfix qshape)",
            "queue_summary_v1",
            {"200": _json("The summary", _SUMMARY)},
        )
    },
}
