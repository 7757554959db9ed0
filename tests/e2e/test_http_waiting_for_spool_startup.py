"""While the spool is being recovered the HTTP API is up and says so: the probes and inject
answer 503 "waiting for spool startup" (livez 200), then 200 once the node is ready."""

import asyncio
import time

import aiohttp

from mta.queue.meta import new_meta
from spool import Spool
from tests.support.net import free_port, unused_loopback_address
from tests.support.node import InProcessNode, node_settings

MESSAGES = 25_000  # recovery of this many takes a few tenths of a second
BATCH = 2_000
INJECT_BODY = {
    "envelope_sender": "a@example.org",
    "content": "Subject: x\r\n\r\nx\r\n",
    "recipients": [{"email": "b@example.com"}],
}


async def fill_spool(path) -> None:
    spool = Spool(path, fsync=False)
    await spool.open()
    later = time.time() + 3600  # scheduled, never attempted during the test
    meta = new_meta(
        sender="a@example.org",
        recipients=["b@example.com"],
        created=time.time(),
        size=16,
        reception_protocol="ESMTP",
        peer="127.0.0.1",
        tenant=None,
        campaign=None,
        default_domain="mta.test",
    )
    meta["legs"]["example.com"]["due"] = later
    for start in range(0, MESSAGES, BATCH):
        ids = range(start, min(start + BATCH, MESSAGES))
        await asyncio.gather(*(spool.store(f"m{i}", meta, b"Subject: x\r\n\r\nx\r\n") for i in ids))
    await spool.close()


async def answer(session, method, url, **kwargs) -> tuple[int, str] | None:
    try:
        async with session.request(method, url, **kwargs) as response:
            return response.status, await response.text()
    except aiohttp.ClientConnectionError:
        return None  # not listening yet


async def sample(session, url: str) -> dict[str, tuple[int, str] | None]:
    return {
        "liveness": await answer(session, "GET", url + "/api/check-liveness/v1"),
        "readyz": await answer(session, "GET", url + "/readyz"),
        "livez": await answer(session, "GET", url + "/livez"),
        "inject": await answer(session, "POST", url + "/api/inject/v1", json=INJECT_BODY),
    }


async def test_probes_and_inject_wait_for_spool_recovery(tmp_path) -> None:
    # A relay route, never DNS: an inject answered once the node is ready stays local.
    relay = f"{unused_loopback_address()}:{free_port()}"
    settings = node_settings(tmp_path, routes=[{"domains": ["*"], "relay": relay}])
    await fill_spool(settings["spool"]["path"])
    node = InProcessNode(settings)
    seen: list[dict[str, tuple[int, str] | None]] = []
    starting = asyncio.create_task(node.node.start())
    try:
        async with aiohttp.ClientSession() as session:
            while not starting.done():
                seen.append(await sample(session, node.http_url))
                await asyncio.sleep(0.005)
            await starting
            after = await answer(session, "GET", node.http_url + "/api/check-liveness/v1")
            ready = await answer(session, "GET", node.http_url + "/readyz")
    finally:
        await starting
        await node.node.stop()

    waiting = (503, "waiting for spool startup")
    during = [s for s in seen if s["liveness"] is not None]
    assert during, "the HTTP API never answered while the spool was being recovered"
    assert all(s["liveness"] == waiting for s in during[:-1])
    assert during[0] == {
        "liveness": waiting,
        "readyz": waiting,
        "livez": (200, "OK"),
        "inject": waiting,
    }
    assert after == ready == (200, "OK")
    assert len(node.node.spool) >= MESSAGES  # nothing was lost meanwhile
