"""Inject request bodies: JSON only, size limit after decompression, errors with positions."""

from __future__ import annotations

import gzip
import json
import zlib

import aiohttp
import orjson
import pytest

from tests.integration.http.test_http_support import INJECT_BODY, serve_http

INJECT = "/api/inject/v1"
JSON = {"Content-Type": "application/json"}
LIMIT = 64 * 1024


async def post(url, data, headers=None) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.post(
            url + INJECT, data=data, headers=JSON if headers is None else headers
        ) as response,
    ):
        return response.status, response.content_type, await response.text()


async def test_inject_answers_kumomta_json(tmp_path) -> None:
    body = {**INJECT_BODY, "recipients": [{"email": "a@example.com"}, {"email": "broken"}]}
    async with serve_http() as served:
        status, content_type, text = await post(served.url, orjson.dumps(body))

    assert (status, content_type) == (200, "application/json")
    assert json.loads(text) == {
        "success_count": 1,
        "fail_count": 1,
        "failed_recipients": ["broken"],
        "errors": ["broken: invalid address"],
    }
    [(received, peer)] = served.inject.calls
    assert received == body
    assert peer == "127.0.0.1"


@pytest.mark.parametrize(
    ("data", "position"),
    [
        (b'{"envelope_sender": "a@example.com",\n "recipients": [}', "line 2 column 17"),
        (b"", "line 1 column 1"),
        (b'{"a": 1} trailing', "line 1 column 10"),
        (b'{"a": "\xff"}', "line 1 column"),
    ],
)
async def test_malformed_json_is_400_with_the_position(data, position) -> None:
    async with serve_http() as served:
        status, content_type, text = await post(served.url, data)

    assert (status, content_type) == (400, "text/plain")
    assert text.startswith("Failed to parse the request body as JSON: ")
    assert position in text
    assert served.inject.calls == []


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        (None, 415),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("application/json; charset=utf-8", 200),
        ("Application/JSON", 200),
        ("application/vnd.example+json", 200),
    ],
)
async def test_content_type_must_be_json(content_type, status) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    async with serve_http() as served:
        got, _, text = await post(served.url, orjson.dumps(INJECT_BODY), headers)

    assert got == status, text
    if status == 415:
        assert text == "Expected request with `Content-Type: application/json`"


async def test_invalid_request_passes_the_services_status_and_message() -> None:
    body = {**INJECT_BODY, "content": "Subject: {{ name\r\n\r\nHi"}
    async with serve_http() as served:
        status, content_type, text = await post(served.url, orjson.dumps(body))
        assert (status, content_type) == (422, "text/plain")
        assert text == "content: syntax error in template: unclosed {{"
        assert (await post(served.url, b"[]"))[0] == 422


async def test_spool_refusal_is_503_with_the_reason() -> None:
    async with serve_http() as served:
        served.inject.refuse = "spool write failed: No space left on device"
        status, _, text = await post(served.url, orjson.dumps(INJECT_BODY))

    assert (status, text) == (503, "spool write failed: No space left on device")


async def test_body_over_the_limit_is_413() -> None:
    padded = {**INJECT_BODY, "substitutions": {"pad": "x" * LIMIT}}
    async with serve_http(max_body_bytes=LIMIT) as served:
        status, _, text = await post(served.url, orjson.dumps(padded))
        assert (status, text) == (413, f"Request body is larger than the limit of {LIMIT} bytes")

        async def chunks():  # no Content-Length: the limit holds on the stream too
            for _ in range(4):
                yield b" " * (LIMIT // 2)
            yield orjson.dumps(INJECT_BODY)

        status, _, _ = await post(served.url, chunks())
        assert status == 413
        assert served.inject.calls == []


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("GZIP", gzip.compress)],
)
async def test_compressed_bodies_are_accepted(encoding, compress) -> None:
    async with serve_http() as served:
        headers = {**JSON, "Content-Encoding": encoding}
        status, _, text = await post(served.url, compress(orjson.dumps(INJECT_BODY)), headers)

    assert status == 200, text
    assert served.inject.calls[0][0] == INJECT_BODY


async def test_gzip_bomb_is_413_after_inflating_no_more_than_the_limit() -> None:
    inflated = 48 * 1024 * 1024  # 48 MiB of spaces in ~47 KiB, 750 times the limit
    bomb = gzip.compress(b" " * inflated, compresslevel=9)
    assert len(bomb) < LIMIT
    async with serve_http(max_body_bytes=LIMIT) as served:
        headers = {**JSON, "Content-Encoding": "gzip"}
        status, _, text = await post(served.url, bomb, headers)

    assert (status, text) == (413, f"Request body is larger than the limit of {LIMIT} bytes")
    assert served.inject.calls == []


async def test_undecodable_or_unknown_encodings_are_refused() -> None:
    async with serve_http() as served:
        corrupt = gzip.compress(orjson.dumps(INJECT_BODY))[:-12] + b"garbage!garbage!"
        status, _, text = await post(served.url, corrupt, {**JSON, "Content-Encoding": "gzip"})
        assert status == 400, text

        headers = {**JSON, "Content-Encoding": "compress"}
        status, _, text = await post(served.url, orjson.dumps(INJECT_BODY), headers)
        assert status == 415
        assert "Content-Encoding" in text
