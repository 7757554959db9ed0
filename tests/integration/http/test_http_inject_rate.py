"""`[http] inject_rate`: every recipient counts against the caller's budget; over it 429 with
Retry-After and nothing stored; each credential (or trusted client address) has its own."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from mta.http.inject_rate import retry_after_header
from tests.integration.http.test_http_support import (
    INJECT_BODY,
    UNTRUSTED,
    basic,
    bearer,
    serve_http,
    write_lines,
)
from tests.support.net import free_port, unused_loopback_address
from tests.support.node import InProcessNode, node_settings

INJECT = "/api/inject/v1"
SLOW = "2/m"  # nothing drains back during a test: every decision is by count alone
MAX_ATTEMPTS = 20


def body(recipients: int) -> dict[str, Any]:
    return {
        **INJECT_BODY,
        "recipients": [{"email": f"rcpt{i}@example.com"} for i in range(recipients)],
    }


async def post(
    session: aiohttp.ClientSession, url: str, recipients: int, headers: dict[str, str] | None
) -> tuple[int, str, str | None, str]:
    """(status, content type, Retry-After, text)."""
    async with session.post(url + INJECT, json=body(recipients), headers=headers) as response:
        text = await response.text()
        return response.status, response.content_type, response.headers.get("Retry-After"), text


@pytest.fixture
def credentials(tmp_path):
    return {
        "users_file": write_lines(tmp_path / "users", ["alice:alice-pass", "bob:bob-pass"]),
        "tokens_file": write_lines(tmp_path / "tokens", ["ci:ci-token"]),
        "trusted_networks": UNTRUSTED,
    }


async def test_under_the_limit_200_over_it_429_with_retry_after(credentials):
    alice = basic("alice", "alice-pass")
    async with (
        serve_http(inject_rate=SLOW, **credentials) as served,
        aiohttp.ClientSession() as session,
    ):
        first = await post(session, served.url, 1, alice)
        second = await post(session, served.url, 1, alice)
        refused = await post(session, served.url, 1, alice)

    assert (first[0], second[0]) == (200, 200)
    status, content_type, retry_after, text = refused
    assert (status, content_type) == (429, "text/plain")  # as every other refusal of the API
    assert retry_after is not None and int(retry_after) >= 1
    assert "inject_rate 2/m exceeded for alice" in text
    assert len(served.inject.calls) == 2  # the refused request never reached the service


async def test_every_recipient_counts(credentials):
    alice = basic("alice", "alice-pass")
    async with (
        serve_http(inject_rate=SLOW, **credentials) as served,
        aiohttp.ClientSession() as session,
    ):
        batch = await post(session, served.url, 2, alice)
        refused = await post(session, served.url, 1, alice)

    assert (batch[0], refused[0]) == (200, 429)


async def test_credentials_have_separate_budgets(credentials):
    alice, bob, ci = basic("alice", "alice-pass"), basic("bob", "bob-pass"), bearer("ci-token")
    async with (
        serve_http(inject_rate=SLOW, **credentials) as served,
        aiohttp.ClientSession() as session,
    ):
        spent = await post(session, served.url, 2, alice)
        alice_again = await post(session, served.url, 1, alice)
        bob_answer = await post(session, served.url, 2, bob)
        token_answer = await post(session, served.url, 2, ci)

    assert (spent[0], alice_again[0]) == (200, 429)
    assert (bob_answer[0], token_answer[0]) == (200, 200)
    assert len(served.inject.calls) == 3


async def test_a_trusted_client_without_credentials_is_limited_by_its_address(credentials):
    trusted = {**credentials, "trusted_networks": ("127.0.0.0/8",)}
    async with (
        serve_http(inject_rate=SLOW, **trusted) as served,
        aiohttp.ClientSession() as session,
    ):
        spent = await post(session, served.url, 2, None)
        refused = await post(session, served.url, 1, None)
        with_credentials = await post(session, served.url, 2, basic("alice", "alice-pass"))

    assert (spent[0], refused[0], with_credentials[0]) == (200, 429, 200)
    assert "exceeded for trusted:127.0.0.1" in refused[3]


async def test_a_request_larger_than_the_burst_is_refused_and_says_so(credentials):
    async with (
        serve_http(inject_rate=SLOW, **credentials) as served,
        aiohttp.ClientSession() as session,
    ):
        status, _, retry_after, text = await post(
            session, served.url, 3, basic("alice", "alice-pass")
        )
        small = await post(session, served.url, 2, basic("alice", "alice-pass"))

    assert status == 429
    assert retry_after is None  # waiting would not help
    assert "3 recipients, more than the inject_rate burst of 2" in text
    assert small[0] == 200  # the refused request consumed nothing
    assert len(served.inject.calls) == 1


async def test_after_retry_after_the_request_passes_again(credentials):
    alice = basic("alice", "alice-pass")
    async with (
        serve_http(inject_rate="2/s", **credentials) as served,
        aiohttp.ClientSession() as session,
    ):
        # Two recipients need the whole burst: the second such request within a second is
        # refused. On a slow machine a request may arrive after the bucket drained, so keep
        # going until one is refused.
        refused = None
        for _ in range(MAX_ATTEMPTS):
            answer = await post(session, served.url, 2, alice)
            if answer[0] == 429:
                refused = answer
                break
        assert refused is not None, "never throttled"
        assert refused[2] is not None
        await asyncio.sleep(int(refused[2]))
        again = await post(session, served.url, 2, alice)

    assert again[0] == 200, again[3]


def test_retry_after_is_whole_seconds_rounded_up_at_least_one():
    assert [retry_after_header(s) for s in (0.0, 0.001, 1.0, 1.2, 29.9)] == [
        "1",
        "1",
        "1",
        "2",
        "30",
    ]


async def test_a_refused_request_stores_nothing(tmp_path):
    # A relay nobody listens on: what is accepted stays in the spool (transient failures).
    host = unused_loopback_address()
    routes = [{"domains": ["*"], "relay": f"{host}:{free_port(host)}"}]
    settings = node_settings(tmp_path, routes=routes, http={"inject_rate": "1/m"})
    async with InProcessNode(settings) as node, aiohttp.ClientSession() as session:
        accepted = await post(session, node.http_url, 1, None)
        refused = await post(session, node.http_url, 1, None)
        spooled = node.node.spool.stats().messages
        receptions = node.of_type("Reception")

    assert (accepted[0], refused[0]) == (200, 429)
    assert refused[2] is not None
    assert spooled == 1
    assert len(receptions) == 1  # logged after the durable write, before the 200
