"""An inject request already past the door when the node starts stopping is finished (within
the drain timeout) and its message is kept; a new one gets 503 "shutting down"."""

import asyncio

import aiohttp
import orjson

from tests.support.net import free_port, unused_loopback_address
from tests.support.node import InProcessNode, node_settings, wait_until

BODY = orjson.dumps(
    {
        "envelope_sender": "alice@example.org",
        "content": "Subject: late\r\n\r\nStill accepted.\r\n",
        "recipients": [{"email": "bob@example.com"}],
    }
)
JSON = {"Content-Type": "application/json"}


async def test_inject_in_flight_finishes_during_shutdown(tmp_path, sink_factory) -> None:
    sink_host = unused_loopback_address()
    sink_port = free_port(sink_host)
    sink = await sink_factory(host=sink_host, port=sink_port)
    routes = [{"domains": ["*"], "relay": f"{sink_host}:{sink_port}"}]
    node = InProcessNode(node_settings(tmp_path, routes=routes))
    await node.node.start()
    release = asyncio.Event()

    async def slow_body():
        yield BODY[:20]
        await release.wait()  # the request is past the door, its body still coming
        yield BODY[20:]

    async with aiohttp.ClientSession() as session:

        async def post(data) -> tuple[int, str]:
            async with session.post(node.http_url + "/api/inject/v1", data=data, headers=JSON) as r:
                return r.status, await r.text()

        in_flight = asyncio.create_task(post(slow_body()))
        server = node.node.api.server
        await wait_until(lambda: server.injects_in_flight == 1, what="the inject in flight")
        stopping = asyncio.create_task(node.node.stop())
        await asyncio.sleep(0)  # stop() marks the node as stopping in its first step
        refused = await post(BODY)
        release.set()
        accepted = await in_flight
        await stopping

    assert refused == (503, "shutting down")
    assert accepted[0] == 200
    assert orjson.loads(accepted[1])["success_count"] == 1
    assert len(node.of_type("Reception", "bob@example.com")) == 1
    # Delivered during the drain, or kept in the spool for the next start: never lost.
    assert len(sink.messages) == 1 or len(node.node.spool) == 1
