"""The body of `POST /api/internal/accept/v1`: one queued message handed to a peer node.

    {"v": 1, "id": "<the original message id>",
     "meta": {<the message's stored meta, mta.queue.meta v1: sender, created, tenant,
               campaign, reception facts, legs with the remaining recipients per domain>},
     "data": "<the message bytes, base64>"}

The message bytes are sent as stored: already signed (DKIM signs once, at the first
reception) and with their Received header. `created` keeps counting towards `[queue] max_age`
from the original reception; the legs keep their attempt counts and due times. The meta's
`drain_hops` counts the handovers: a retry repeats it, a later handover of the same message
(it moved on and came back) does not.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from mta.queue.meta import MetaError, check_meta

ACCEPT_PATH: Final = "/api/internal/accept/v1"
WIRE_VERSION: Final = 1
CONTENT_TYPE: Final = "application/json"
# Kept in the stored meta: a message that comes back later (drained on from the peer, then
# back here) is a new handover, not a retry of the one this node remembers.
HOPS: Final = "drain_hops"
# Message ids become spool keys and lines of the accepted-ids file: a safe alphabet only.
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class WireError(ValueError):
    """A handover body that cannot be accepted as sent (the peer answers 400)."""


@dataclass(frozen=True, slots=True)
class Handover:
    """One message as handed over: its original id, its stored meta and its bytes."""

    id: str
    meta: dict[str, Any]
    data: bytes


def encode(msg_id: str, meta: Mapping[str, Any], data: bytes) -> bytes:
    """The request body for one message (one more hop in its meta's `drain_hops`)."""
    sent = {**meta, HOPS: hops(meta) + 1}
    body = {"v": WIRE_VERSION, "id": msg_id, "meta": sent, "data": base64.b64encode(data)}
    return orjson.dumps(body, default=_bytes_as_text)


def decode(body: bytes) -> Handover:
    """Parse and check a request body; WireError says what is wrong with it."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("v") != WIRE_VERSION:
        raise WireError(f"expected a JSON object with v = {WIRE_VERSION}")
    msg_id = document.get("id")
    if not isinstance(msg_id, str) or not _MESSAGE_ID.match(msg_id):
        raise WireError("id: expected 1 to 128 letters, digits, '.', '_' or '-'")
    return Handover(msg_id, check_message_meta(document.get("meta")), _data(document.get("data")))


def hops(meta: Mapping[str, Any]) -> int:
    """How many handovers brought the message here (0: accepted here from a client)."""
    value = meta.get(HOPS, 0)
    return value if isinstance(value, int) and value >= 0 else 0


def is_message(meta: Mapping[str, Any]) -> bool:
    """True for a queued message; False for other work kept in the spool (an inject batch)."""
    return "kind" not in meta


def check_message_meta(meta: Any) -> dict[str, Any]:
    """`meta` if it is a message's stored meta with a recipient left, else WireError."""
    if not isinstance(meta, dict) or not is_message(meta):
        raise WireError("meta: expected the stored meta of a message")
    try:
        check_meta(meta)
    except MetaError as exc:
        raise WireError(f"meta: {exc}") from None
    if not isinstance(meta.get("created"), int | float):
        raise WireError("meta.created: expected the time of the original reception")
    legs = meta["legs"]
    for domain, leg in legs.items():
        if not all(isinstance(rcpt, str) and rcpt for rcpt in leg["rcpts"]):
            raise WireError(f"meta.legs.{domain}.rcpts: expected addresses")
    if not any(leg["rcpts"] for leg in legs.values()):
        raise WireError("meta.legs: no recipient left")
    return meta


def _data(data: Any) -> bytes:
    if not isinstance(data, str) or not data:
        raise WireError("data: expected the message as base64")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise WireError("data: not valid base64") from None


def _bytes_as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii")
    raise TypeError(f"cannot encode {type(value).__name__}")
