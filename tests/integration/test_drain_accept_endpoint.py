"""`POST /api/internal/accept/v1`: idempotent by original id (durably), admin only, checked."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mta.drain.accepted import FILE_NAME, AcceptedIds
from mta.drain.client import PeerClient, PeerError, auth_header
from mta.drain.wire import ACCEPT_PATH, HOPS, WireError, decode, encode
from mta.queue.meta import new_meta
from tests.support.node import InProcessNode, node_settings, simple_message, wait_until
from tests.support.smtp_sink import ScriptedSink

ADMIN, PASSWORD = "drainer", "drain-secret"
ORIGINAL_ID = "0123456789abcdef0123456789abcdef"
CREATED = time.time() - 3600.0  # an hour ago, on the node that first took it


def peer_settings(tmp_path: Path, sink: ScriptedSink) -> dict[str, Any]:
    (tmp_path / "users").write_text(f"{ADMIN}:{PASSWORD}\nreader:other\n")
    return node_settings(
        tmp_path,
        routes=[{"domains": ["*"], "relay": f"{sink.host}:{sink.port}"}],
        http={
            "trusted_networks": [],
            "users_file": str(tmp_path / "users"),
            "admin_users": [ADMIN],
        },
    )


def queued_meta() -> dict[str, Any]:
    meta = new_meta(
        sender="alice@example.org",
        recipients=["bob@example.com", "carol@example.com"],
        created=CREATED,
        size=0,
        reception_protocol="ESMTP",
        peer="192.0.2.1",
        tenant="acme",
        campaign="spring",
        default_domain="mta.test",
    )
    meta["legs"]["example.com"]["attempts"] = 3
    return meta


def admin(url: str) -> PeerClient:
    return PeerClient(url, auth_header=auth_header(user=ADMIN, password=PASSWORD, token_file=None))


async def test_same_id_twice_stored_once_and_remembered(tmp_path, sink_factory) -> None:
    sink = await sink_factory()
    settings = peer_settings(tmp_path, sink)
    data = simple_message("handed over")
    async with InProcessNode(settings) as peer, admin(peer.http_url) as client:
        assert await client.hand_over(ORIGINAL_ID, queued_meta(), data) is True
        assert await client.hand_over(ORIGINAL_ID, queued_meta(), data) is False
        await sink.wait_for_messages(1)
        await peer.wait_for_record("Delivery", count=2)
        # Delivered and gone from the spool: the accepted-ids record still knows it.
        await wait_until(lambda: ORIGINAL_ID not in peer.node.spool, what="removal")
        assert await client.hand_over(ORIGINAL_ID, queued_meta(), data) is False
    reception = peer.of_type("Reception")[:2]
    assert len(reception) == 2  # one per recipient, once
    assert {r["id"] for r in reception} == {ORIGINAL_ID}
    assert reception[0]["created"] == int(CREATED)  # expiry counts from the first reception
    assert reception[0]["meta"] == {"tenant": "acme", "campaign": "spring"}
    assert reception[0]["queue"] == "spring:acme@example.com"
    assert len(sink.messages) == 1 and sink.messages[0].data.endswith(data)

    async with InProcessNode(settings) as restarted, admin(restarted.http_url) as client:
        assert await client.hand_over(ORIGINAL_ID, queued_meta(), data) is False
        # The same message back after one more hop (drained on, then back): a new handover.
        assert await client.hand_over(ORIGINAL_ID, {**queued_meta(), HOPS: 1}, data) is True
        await sink.wait_for_messages(2)
    assert len(sink.messages) == 2


async def test_credentials_and_bodies_checked(tmp_path, sink_factory) -> None:
    sink = await sink_factory()
    async with InProcessNode(peer_settings(tmp_path, sink)) as peer:
        async with PeerClient(peer.http_url) as anonymous:
            with pytest.raises(PeerError) as missing:
                await anonymous.hand_over(ORIGINAL_ID, queued_meta(), b"x")
        reader = auth_header(user="reader", password="other", token_file=None)
        async with PeerClient(peer.http_url, auth_header=reader) as client:
            with pytest.raises(PeerError) as forbidden:
                await client.hand_over(ORIGINAL_ID, queued_meta(), b"x")
        no_rcpts = {**queued_meta(), "legs": {"example.com": {"rcpts": [], "due": 0.0}}}
        async with admin(peer.http_url) as client:
            with pytest.raises(PeerError) as empty:
                await client.hand_over(ORIGINAL_ID, no_rcpts, b"x")
            with pytest.raises(PeerError) as batch:
                await client.hand_over(ORIGINAL_ID, {"v": 1, "kind": "inject-batch"}, b"x")
        async with aiohttp.ClientSession() as session:
            url = peer.http_url + ACCEPT_PATH
            headers = {"Authorization": auth_header(user=ADMIN, password=PASSWORD, token_file=None)}
            async with session.post(url, data=b"{}", headers=headers) as response:
                unsupported = response.status  # not declared JSON
        stored = len(peer.node.spool)
    assert (missing.value.status, forbidden.value.status) == (401, 403)
    assert not missing.value.transient and missing.value.unauthorized
    assert (empty.value.status, batch.value.status, unsupported) == (400, 400, 415)
    assert "no recipient left" in str(empty.value)
    assert stored == 0


def test_wire_round_trip_and_refusals() -> None:
    data = b"Subject: x\r\n\r\n\x00\xff binary-safe\r\n"
    handover = decode(encode(ORIGINAL_ID, queued_meta(), data))
    assert (handover.id, handover.data) == (ORIGINAL_ID, data)
    assert handover.meta == {**queued_meta(), HOPS: 1}
    for body in (b"[]", b'{"v": 2}', b"not json"):
        with pytest.raises(WireError):
            decode(body)
    with pytest.raises(WireError, match="id"):
        decode(encode("../../etc/passwd", queued_meta(), data))
    broken = encode(ORIGINAL_ID, queued_meta(), data).replace(b'"data":"', b'"data":"!')
    with pytest.raises(WireError, match="base64"):
        decode(broken)


async def test_accepted_ids_bounded_durable_and_torn_line_ignored(tmp_path) -> None:
    path = tmp_path / FILE_NAME
    ids = AcceptedIds(path, keep=4)
    for i in range(11):
        await ids.add(f"id{i}")
    assert len(ids) == 4 and "id10" in ids and "id6" not in ids
    assert len(path.read_text().splitlines()) <= 8  # rewritten at twice `keep`
    with path.open("a") as file:
        file.write("id-torn")  # a crash in the middle of a write: no newline
    again = AcceptedIds(path, keep=4)
    again.load()
    assert [f"id{i}" in again for i in range(7, 11)] == [True] * 4
    assert "id-torn" not in again and "id6" not in again
