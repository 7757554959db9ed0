"""During the drain at shutdown the HTTP API stays up and says "shutting down": readyz, the
liveness check and inject answer 503 while a delivery is still in flight; livez stays 200; the
HTTP listener closes only once the drain is over."""

import asyncio

import aiohttp

from tests.support.net import free_port, unused_loopback_address
from tests.support.node import InProcessNode, node_settings

INJECT_BODY = {
    "envelope_sender": "a@example.org",
    "content": "Subject: x\r\n\r\nx\r\n",
    "recipients": [{"email": "b@example.com"}],
}
SHUTTING_DOWN = (503, "shutting down")


async def answer(session, method, url, **kwargs) -> tuple[int, str]:
    async with session.request(method, url, **kwargs) as response:
        return response.status, await response.text()


async def test_http_answers_shutting_down_while_draining(tmp_path, sink_factory) -> None:
    sink_host = unused_loopback_address()
    sink_port = free_port(sink_host)
    sink = await sink_factory(host=sink_host, port=sink_port, stall="DATA", stall_seconds=2.0)
    settings = node_settings(
        tmp_path, routes=[{"domains": ["*"], "relay": f"{sink_host}:{sink_port}"}]
    )
    node = InProcessNode(settings)
    await node.node.start()
    stopping = None
    try:
        await node.send("alice@example.org", ["bob@example.com"])
        await sink.wait_for_connections(1)  # the delivery is in flight, stalled at DATA
        async with aiohttp.ClientSession() as session:
            assert await answer(session, "GET", node.http_url + "/readyz") == (200, "OK")
            stopping = asyncio.create_task(node.node.stop())
            await asyncio.sleep(0)  # stop() marks the node as stopping in its first step
            readyz = await answer(session, "GET", node.http_url + "/readyz")
            liveness = await answer(session, "GET", node.http_url + "/api/check-liveness/v1")
            livez = await answer(session, "GET", node.http_url + "/livez")
            inject = await answer(
                session, "POST", node.http_url + "/api/inject/v1", json=INJECT_BODY
            )
            in_flight = sink.messages == [] and not stopping.done()
        await stopping
    finally:
        if stopping is None:
            await node.node.stop()

    assert (readyz, liveness, livez) == (SHUTTING_DOWN, SHUTTING_DOWN, (200, "OK"))
    assert inject == SHUTTING_DOWN
    assert in_flight, "the probes must answer during the drain, before the delivery ends"
    assert [m.rcpt_tos for m in sink.messages] == [["bob@example.com"]]
    assert len(node.of_type("Delivery", "bob@example.com")) == 1
    async with aiohttp.ClientSession() as session:
        try:
            await answer(session, "GET", node.http_url + "/livez")
        except aiohttp.ClientConnectionError:
            pass
        else:
            raise AssertionError("the HTTP API still answers after stop()")
