"""The OpenAPI 3.1 document served at `GET /api-docs/openapi.json` (as KumoMTA does).

Request and response schemas follow KumoMTA's inject API (`docs/reference/http/kumod/`).
Admin paths come from `mta.http.admin_routes.ADMIN_OPENAPI_PATHS`; this module adds the
answers the auth middleware can give to every authenticated operation (400, 401, 403).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from mta.http.inject_route import INJECT_PATH

OPENAPI_PATH = "/api-docs/openapi.json"
OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_JSON_OBJECT = {"application/json": {"schema": {"type": "object"}}}
_PROMETHEUS = {"text/plain": {"schema": {"type": "string"}}}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": copy.deepcopy(_TEXT)}


AUTH_RESPONSES = {
    "400": _text("Malformed or unsupported Authorization header"),
    "401": {
        **_text("Missing or invalid credentials (clients outside trusted_networks)"),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
}
ADMIN_RESPONSES = {**AUTH_RESPONSES, "403": _text("Authenticated, but not in admin_users")}

_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_OBJECT = {"type": ["object", "null"]}
_NULLABLE_BOOLEAN = {"type": ["boolean", "null"]}

# Like KumoMTA (serde deny_unknown_fields), unknown fields are refused; null means absent.
_MAILBOX = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email"],
    "properties": {"email": {"type": "string"}, "name": _NULLABLE_STRING},
}
_ATTACHMENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["data", "content_type"],
    "properties": {
        "data": {"type": "string", "description": "Text, or base64 when `base64` is true"},
        "content_type": {"type": "string"},
        "base64": {**_NULLABLE_BOOLEAN, "default": False},
        "file_name": _NULLABLE_STRING,
        "content_id": {**_NULLABLE_STRING, "description": "Makes the part inline (related)"},
    },
}
_BUILDER = {
    "type": "object",
    "description": "A message to build; bodies and headers are templates",
    "additionalProperties": False,
    "anyOf": [{"required": ["text_body"]}, {"required": ["html_body"]}],
    "properties": {
        "text_body": _NULLABLE_STRING,
        "html_body": _NULLABLE_STRING,
        "amp_html_body": _NULLABLE_STRING,
        "subject": _NULLABLE_STRING,
        "from": {"oneOf": [{"$ref": "#/components/schemas/Mailbox"}, {"type": "null"}]},
        "reply_to": {"oneOf": [{"$ref": "#/components/schemas/Mailbox"}, {"type": "null"}]},
        "headers": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
        "attachments": {
            "type": ["array", "null"],
            "items": {"$ref": "#/components/schemas/Attachment"},
        },
    },
}
_RECIPIENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email"],
    "properties": {
        "email": {"type": "string"},
        "name": _NULLABLE_STRING,
        "substitutions": _NULLABLE_OBJECT,
        "metadata": _NULLABLE_OBJECT,
    },
}
_TRACE_HEADERS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "received_header": {**_NULLABLE_BOOLEAN, "default": False},
        "supplemental_header": {**_NULLABLE_BOOLEAN, "default": True},
        "header_name": {**_NULLABLE_STRING, "default": "X-KumoRef"},
        "include_meta_names": {"type": ["array", "null"], "items": {"type": "string"}},
    },
}
_INJECT_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["envelope_sender", "recipients", "content"],
    "properties": {
        "envelope_sender": {"type": "string", "description": "MAIL FROM"},
        "recipients": {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/components/schemas/Recipient"},
        },
        "content": {
            "description": "A whole RFC 5322 message (a template), or a message to build",
            "oneOf": [{"type": "string"}, {"$ref": "#/components/schemas/Content"}],
        },
        "substitutions": _NULLABLE_OBJECT,
        "template_dialect": {"enum": ["Jinja", "Static", "Handlebars", None], "default": "Jinja"},
        "deferred_spool": {**_NULLABLE_BOOLEAN, "default": False},
        "deferred_generation": {**_NULLABLE_BOOLEAN, "default": False},
        "trace_headers": {
            "oneOf": [{"$ref": "#/components/schemas/TraceHeaders"}, {"type": "null"}]
        },
    },
}
_RATE_LIMITED = {
    **_text(
        "Over `[http] inject_rate` (nothing was stored). Every recipient counts as one message"
        " against the caller's budget, kept per node in memory and keyed by the identity:"
        " the Basic user name, the bearer token's name (`bearer` when unnamed), or"
        " `trusted:<client IP>` for a trusted-network request without credentials. Retry"
        " after `Retry-After` seconds. A request with more recipients than the limit's burst"
        " can never pass: it gets 429 without `Retry-After` and should be split."
    ),
    "headers": {
        "Retry-After": {
            "description": "Whole seconds until the same request fits the budget",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}
_INJECT_RESPONSE = {
    "type": "object",
    "required": ["success_count", "fail_count", "failed_recipients", "errors"],
    "properties": {
        "success_count": {"type": "integer", "minimum": 0},
        "fail_count": {"type": "integer", "minimum": 0},
        "failed_recipients": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "array", "items": {"type": "string"}, "description": "email: reason"},
    },
}


def _inject_operation() -> dict[str, Any]:
    return {
        "summary": "Inject messages (KumoMTA's inject API)",
        "operationId": "inject_v1",
        "tags": ["inject"],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/InjectV1Request"}}
            },
        },
        "responses": {
            "200": {
                "description": "Processed; per-recipient failures are in the body",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/InjectV1Response"}
                    }
                },
            },
            **copy.deepcopy(AUTH_RESPONSES),
            "400": _text("Malformed JSON (with line and column), or a malformed request"),
            "413": _text("Body (after gzip/deflate decoding) larger than max_body_bytes"),
            "415": _text("Content-Type is not JSON, or an unsupported Content-Encoding"),
            "422": _text("Template or content syntax error"),
            "429": copy.deepcopy(_RATE_LIMITED),
            "503": _text("Not taking mail: shutting down, waiting for spool startup, storage"),
        },
    }


def _probe(summary: str, op_id: str, *, can_fail: bool) -> dict[str, Any]:
    responses = {"200": _text("OK")}
    if can_fail:
        responses["503"] = _text("Not ready, with the reason")
    operation = {"summary": summary, "operationId": op_id, "tags": ["health"]}
    return {"get": {**operation, "security": [{}], "responses": responses}}


def _base_paths() -> dict[str, Any]:
    return {
        INJECT_PATH: {"post": _inject_operation()},
        "/api/check-liveness/v1": _probe(
            "Whether the node takes mail (KumoMTA's check)", "check_liveness_v1", can_fail=True
        ),
        "/livez": _probe("The process is alive", "livez", can_fail=False),
        "/readyz": _probe("Recovered, storage healthy, not draining", "readyz", can_fail=True),
        "/metrics": {
            "get": {
                "summary": "Prometheus text exposition",
                "operationId": "metrics",
                "tags": ["metrics"],
                "responses": {
                    "200": {"description": "Metrics", "content": copy.deepcopy(_PROMETHEUS)},
                    **copy.deepcopy(ADMIN_RESPONSES),
                },
            }
        },
        OPENAPI_PATH: {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "tags": ["docs"],
                "responses": {
                    "200": {"description": "OpenAPI 3.1", "content": copy.deepcopy(_JSON_OBJECT)},
                    **copy.deepcopy(AUTH_RESPONSES),
                },
            }
        },
    }


def _with_admin_responses(paths: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(paths))
    for item in merged.values():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                responses = operation.setdefault("responses", {})
                for status, answer in ADMIN_RESPONSES.items():
                    responses.setdefault(status, copy.deepcopy(answer))
    return merged


def openapi_document(admin_paths: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The whole document; `admin_paths` are OpenAPI path items for `/api/admin/*`."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "mta HTTP API",
            "version": API_VERSION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
            "description": "KumoMTA-compatible inject, liveness, admin and metrics endpoints.",
        },
        "paths": {**_base_paths(), **_with_admin_responses(admin_paths or {})},
        "components": {
            "schemas": {
                "InjectV1Request": _INJECT_REQUEST,
                "InjectV1Response": _INJECT_RESPONSE,
                "Recipient": _RECIPIENT,
                "Content": _BUILDER,
                "Mailbox": _MAILBOX,
                "Attachment": _ATTACHMENT,
                "TraceHeaders": _TRACE_HEADERS,
            },
            "securitySchemes": {
                "basic_auth": {"type": "http", "scheme": "basic"},
                "bearer_auth": {"type": "http", "scheme": "bearer"},
            },
        },
        # `{}`: no credentials needed from a trusted network.
        "security": [{}, {"basic_auth": []}, {"bearer_auth": []}],
    }
