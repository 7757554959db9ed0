"""The OpenAPI 3.1 path item of `/api/admin/suppression/v1` (merged into the node's document)."""

from __future__ import annotations

from typing import Any

from mta.queue.admin_api import DURATION_PATTERN
from mta.suppression.api import (
    CLASS_PATTERN,
    MAX_RECIPIENT,
    MAX_TENANT,
    MAX_TEXT,
    RECIPIENT_PATTERN,
    SUPPRESSION_PATH,
)

_TIME = {"type": "string", "format": "date-time"}
_RECIPIENT = {"type": "string", "pattern": RECIPIENT_PATTERN, "maxLength": MAX_RECIPIENT}
_TENANT_DOC = "A tenant; empty or absent: the default tenant (mail without one)"
_ENTRY = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "tenant", "recipient", "reason", "classification", "source", "created", "expires",
    ],
    "properties": {
        "tenant": {"type": ["string", "null"], "description": "null: the default tenant"},
        "recipient": {"type": "string", "description": "Lower case"},
        "reason": {"type": "string", "description": "The bounce reply, or the admin's reason"},
        "classification": {"type": "string", "description": "The bounce class"},
        "source": {"enum": ["bounce", "admin"]},
        "created": _TIME,
        "expires": _TIME,
    },
}  # fmt: skip
_ADD_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["recipient"],
    "properties": {
        "recipient": _RECIPIENT,
        "tenant": {"type": ["string", "null"], "maxLength": MAX_TENANT, "description": _TENANT_DOC},
        "reason": {"type": ["string", "null"], "maxLength": MAX_TEXT},
        "classification": {
            "type": ["string", "null"],
            "pattern": CLASS_PATTERN,
            "default": "InvalidRecipient",
        },
        "duration": {
            "type": ["string", "number", "null"],
            "pattern": DURATION_PATTERN,
            "exclusiveMinimum": 0,
            "description": 'How long: "30d", "12h 30m" or seconds; default [suppression] ttl',
        },
    },
}
_TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}
_UNAVAILABLE = {"description": "The store cannot answer (Redis unreachable)", **_TEXT}
_BAD_REQUEST = {"description": "A parameter or the body is invalid; the text names it", **_TEXT}


def _param(name: str, schema: dict[str, Any], doc: str, required: bool = False) -> Any:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": doc}  # fmt: skip


def _operation(summary: str, op_id: str, responses: dict[str, Any], **extra: Any) -> Any:
    return {"summary": summary, "operationId": op_id, "tags": ["admin"], **extra,
            "responses": {**responses, "400": _BAD_REQUEST, "503": _UNAVAILABLE}}  # fmt: skip


_TENANT_PARAM = {"type": "string", "maxLength": MAX_TENANT}
SUPPRESSION_OPENAPI_PATHS: dict[str, Any] = {
    SUPPRESSION_PATH: {
        "get": _operation(
            "List suppressed recipients",
            "suppression_v1_list",
            {
                "200": {
                    "description": "Live entries, by tenant then recipient",
                    "content": {"application/json": {"schema": {"type": "array", "items": _ENTRY}}},
                }
            },
            parameters=[
                _param("tenant", _TENANT_PARAM, "Only this tenant (empty: the default tenant)"),
                _param("recipient", _RECIPIENT, "Only this recipient"),
            ],
        ),
        "post": _operation(
            "Suppress a recipient (replaces an entry of the same tenant and recipient)",
            "suppression_v1_add",
            {
                "200": {
                    "description": "The entry",
                    "content": {"application/json": {"schema": _ENTRY}},
                },
                "413": {"description": "Body larger than the limit", **_TEXT},
                "415": {"description": "Content-Type is not JSON", **_TEXT},
            },
            requestBody={
                "required": True,
                "content": {"application/json": {"schema": _ADD_REQUEST}},
            },
        ),
        "delete": _operation(
            "Remove a suppressed recipient",
            "suppression_v1_remove",
            {
                "200": {"description": 'Removed: "removed <recipient>"', **_TEXT},
                "404": {"description": "Not on the list of this tenant", **_TEXT},
            },
            parameters=[
                _param("recipient", _RECIPIENT, "The recipient", required=True),
                _param("tenant", _TENANT_PARAM, _TENANT_DOC),
            ],
        ),
    }
}
