"""A node with its admin API, for the admin tests (and a smoke test of it).

`AdminNode` runs an in-process node; its own HTTP server (on the loopback address of the test
settings, a trusted network) serves the admin routes over the node's `QueueAdmin`. Tests
talk to it with real HTTP requests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from mta.queue.admin import QueueAdmin
from tests.support.node import InProcessNode, node_settings, wait_until

Answer = tuple[int, Any]  # (status, decoded JSON or text)


class AdminNode(InProcessNode):
    """An InProcessNode and an HTTP client for its API; `admin` is the node's QueueAdmin."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.admin: QueueAdmin = self.node.api.admin
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AdminNode:
        await super().__aenter__()
        self._session = aiohttp.ClientSession(base_url=self.http_url)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
        await super().__aexit__(*exc_info)

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Answer:
        """One request; JSON answers decoded, text answers as they are."""
        assert self._session is not None
        data = raw if raw is not None else None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        async with self._session.request(
            method, path, data=data, params=params, headers=headers
        ) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        status, answer = await self.call(method, path, body, **kwargs)
        assert status == 200, (method, path, status, answer)
        return answer

    def queued(self) -> int:
        return len(self.node.queue.messages)

    async def wait_queued(self, count: int) -> None:
        await wait_until(lambda: self.queued() == count, what=f"{count} queued messages")


async def test_harness_serves_the_admin_api(tmp_path) -> None:
    async with AdminNode(node_settings(tmp_path)) as node:
        assert await node.ok("GET", "/api/admin/bounce/v1") == []
        assert (await node.call("GET", "/api/admin/no-such-endpoint/v1"))[0] == 404
        assert (await node.call("PUT", "/api/admin/bounce/v1"))[0] == 405
        document = await node.ok("GET", "/api-docs/openapi.json")
    assert "/api/admin/queue-summary/v1" in document["paths"]
