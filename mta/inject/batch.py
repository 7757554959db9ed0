"""Deferred generation: a request stored as one spool entry and expanded later, exactly once.

The spool entry's data is the request JSON; its meta says how far expansion got:
`{"v": 1, "kind": "inject-batch", "next": N, "peer": ..., "received": ts}`. Recipient i's
message gets the id `<batch id>-<i>`, so after a crash the ids already in the spool are
skipped and `next` (advanced only once a chunk is durable) says where to resume.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import orjson

BATCH_KIND = "inject-batch"
BATCH_VERSION = 1


def new_batch_id() -> str:
    return uuid.uuid4().hex


def message_id(batch_id: str, index: int) -> str:
    """The spool id of recipient `index`'s message: deterministic, at most 64 ASCII chars."""
    return f"{batch_id}-{index}"


def new_batch_meta(*, peer: str, received: float) -> dict[str, Any]:
    return {"v": BATCH_VERSION, "kind": BATCH_KIND, "next": 0, "peer": peer, "received": received}


def check_batch_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Validate a batch meta read back from the spool; ValueError when unreadable."""
    if meta.get("v") != BATCH_VERSION or meta.get("kind") != BATCH_KIND:
        raise ValueError(f"unsupported inject batch meta version {meta.get('v')!r}")
    if not isinstance(meta.get("next"), int) or meta["next"] < 0:
        raise ValueError("inject batch meta lacks a valid 'next'")
    if not isinstance(meta.get("peer"), str) or not isinstance(meta.get("received"), int | float):
        raise ValueError("inject batch meta lacks 'peer' or 'received'")
    return meta


def encode_request(body: Any) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError:  # integers beyond 64 bits: stdlib json writes them exactly
        return json.dumps(body).encode("ascii")


def decode_request(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
