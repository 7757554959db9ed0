"""Probe endpoints and the inject gate follow the node's phase and the spool's health."""

from __future__ import annotations

import aiohttp

from tests.integration.http.test_http_support import INJECT_BODY, serve_http

PROBES = ("/livez", "/readyz", "/api/check-liveness/v1")
INJECTED = '{"success_count":1,"fail_count":0,"failed_recipients":[],"errors":[]}'


async def states(session, url) -> dict[str, tuple[int, str]]:
    answers = {}
    for path in PROBES:
        async with session.get(url + path) as response:
            answers[path] = (response.status, await response.text())
    async with session.post(url + "/api/inject/v1", json=INJECT_BODY) as response:
        answers["inject"] = (response.status, await response.text())
    return answers


def expect(reason: str | None) -> dict[str, tuple[int, str]]:
    if reason is None:
        ok = {path: (200, "OK") for path in PROBES}
        return {**ok, "inject": (200, INJECTED)}
    down = {"/readyz": (503, reason), "/api/check-liveness/v1": (503, reason)}
    return {"/livez": (200, "OK"), **down, "inject": (503, reason)}


async def test_probes_follow_the_lifecycle() -> None:
    async with serve_http(ready=False) as served, aiohttp.ClientSession() as session:
        assert await states(session, served.url) == expect("waiting for spool startup")

        served.health.mark_ready()
        assert await states(session, served.url) == expect(None)

        served.storage["reason"] = "free space on /spool is 10 bytes, below min_free_bytes 20"
        assert await states(session, served.url) == expect(served.storage["reason"])

        served.storage["reason"] = None
        assert await states(session, served.url) == expect(None)

        served.health.mark_stopping()
        assert await states(session, served.url) == expect("shutting down")

    # Refused at the door: the inject service never saw those requests.
    assert len(served.inject.calls) == 2
