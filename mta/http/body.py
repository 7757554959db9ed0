"""Request bodies: JSON only, size-capped after decompression, errors with their position.

aiohttp inflates `Content-Encoding: gzip` / `deflate` bodies as they stream in, a bounded
chunk at a time; counting the inflated bytes here stops a zip bomb at `max_body_bytes`
(413) without ever holding more than that in memory.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import PayloadEncodingError

from mta.http.errors import HttpError

READ_CHUNK_BYTES = 64 * 1024
ACCEPTED_ENCODINGS = frozenset({"", "identity", "gzip", "deflate"})  # as KumoMTA
JSON_REQUIRED = "Expected request with `Content-Type: application/json`"


def is_json_type(content_type: str | None) -> bool:
    """`application/json` or `application/<anything>+json`, parameters ignored (like axum)."""
    if content_type is None:
        return False
    mime = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = mime.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def check_json_request(request: web.Request) -> None:
    """415 unless the body is declared JSON in a content coding we can inflate."""
    if not is_json_type(request.headers.get("Content-Type")):
        raise HttpError(415, JSON_REQUIRED)
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ACCEPTED_ENCODINGS:
        raise HttpError(415, f"Unsupported Content-Encoding {encoding!r}: use gzip or deflate")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The (inflated) body; 413 past `limit` bytes, 400 when it cannot be inflated."""
    too_large = HttpError(413, f"Request body is larger than the limit of {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_chunked(READ_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    except PayloadEncodingError:
        encoding = request.headers.get("Content-Encoding", "")
        raise HttpError(400, f"Request body is not valid {encoding} data") from None
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """Decode JSON; 400 with the line and column of the first error."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(
            400,
            "Failed to parse the request body as JSON: "
            f"{exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None


async def read_json(request: web.Request, limit: int) -> Any:
    """Check, read and decode a JSON request body (415 / 413 / 400 as above)."""
    check_json_request(request)
    return parse_json(await read_body(request, limit))
