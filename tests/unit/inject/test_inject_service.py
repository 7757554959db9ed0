"""The inject service on a real node (spool, acceptor, queue) delivering into a real sink."""

from __future__ import annotations

import copy
import email.policy
from collections import Counter
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mta.inbound import Inbound
from mta.inject import InjectError, InjectService, batch, service
from mta.inject.addresses import AddressChecker
from mta.inject.generate import Generated, RequestPlan
from mta.inject.schema import parse_request
from mta.inject.templates import TemplateEngine
from mta.replies import TransientError
from tests.support.node import InProcessNode, node_settings, wait_until
from tests.support.payloads import SAMPLE_PAYLOAD
from tests.support.scenario import relay_target

PEER = "127.0.0.1"


def request(recipients: int, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(SAMPLE_PAYLOAD)
    body["content"]["text_body"] = "Hello {{ name }}, your code is {{ code }}."
    body["recipients"] = [
        {"email": f"user{i}@example.com", "name": f"User {i}", "substitutions": {"code": i}}
        for i in range(recipients)
    ]
    body.update(fields)
    return body


def new_service(node: InProcessNode, **options: Any) -> InjectService:
    return InjectService(
        acceptor=node.node.acceptor, spool=node.node.spool, hostname="mta.test", **options
    )


def recovering_node(settings: dict[str, Any]) -> tuple[InProcessNode, InjectService]:
    """A node whose startup hands inject batches found in the spool to a service."""
    node = InProcessNode(settings)
    inject = new_service(node)
    node.node.queue.recovery_handlers[batch.BATCH_KIND] = inject.recover
    return node, inject


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_inject_stores_then_delivers_one_message_per_recipient(
    tmp_path: Path, sink_factory: Any
) -> None:
    sink = await sink_factory()
    settings = node_settings(
        tmp_path, routes=[{"domains": ["*"], "relay": f"{sink.host}:{sink.port}"}]
    )
    body = request(3)
    body["recipients"].insert(1, {"email": "bad@@example.com"})
    async with InProcessNode(settings) as node:
        inject = new_service(node)
        answer = await inject.inject(body, peer_address=PEER)
        assert answer["success_count"] == 3
        assert answer["fail_count"] == 1
        assert answer["failed_recipients"] == ["bad@@example.com"]
        assert answer["errors"][0].startswith("bad@@example.com: invalid address")
        messages = await sink.wait_for_messages(3)
        await node.wait_for_record("Delivery", count=3)
        receptions = node.of_type("Reception")
        await inject.close(5)
    assert sorted(r for m in messages for r in m.rcpt_tos) == [
        f"user{i}@example.com" for i in range(3)
    ]
    assert {m.mail_from for m in messages} == {"test@example.com"}
    for received in messages:
        message = parsed(received.data)
        assert message.get_content_type() == "multipart/alternative"
        assert message["From"].addresses[0].display_name == "Test"
        assert message["To"].addresses[0].addr_spec == received.rcpt_tos[0]
        text = message.get_body(("plain",))
        assert text is not None
        number = received.rcpt_tos[0][len("user") : -len("@example.com")]
        assert text.get_content() == f"Hello User {number}, your code is {number}."
    assert {r["reception_protocol"] for r in receptions} == {"HTTP"}
    assert {r["peer_address"]["addr"] for r in receptions} == {PEER}


async def test_answer_comes_only_once_every_message_is_in_the_spool(tmp_path: Path) -> None:
    relay = relay_target()  # no sink: everything stays queued
    async with InProcessNode(node_settings(tmp_path, routes=relay.routes)) as node:
        inject = new_service(node)
        answer = await inject.inject(request(250), peer_address=PEER)
        assert answer == {
            "success_count": 250,
            "fail_count": 0,
            "failed_recipients": [],
            "errors": [],
        }
        assert len(node.node.spool) == 250
        stats = node.node.spool.stats()
        assert stats.commits < 50  # stored concurrently: the group commit batched them
        await inject.close(5)


async def test_refused_while_shutting_down(tmp_path: Path) -> None:
    async with InProcessNode(node_settings(tmp_path)) as node:
        inject = new_service(node)
        node.node.acceptor.refusing = "shutting down"
        with pytest.raises(TransientError, match="shutting down"):
            await inject.inject(request(2), peer_address=PEER)
        with pytest.raises(TransientError, match="shutting down"):
            await inject.inject(request(2, deferred_generation=True), peer_address=PEER)
        assert len(node.node.spool) == 0


async def test_request_errors_come_before_the_health_check(tmp_path: Path) -> None:
    async with InProcessNode(node_settings(tmp_path)) as node:
        inject = new_service(node)
        with pytest.raises(InjectError) as info:
            await inject.inject({"recipients": []}, peer_address=PEER)
        assert info.value.status == 400
        body = request(1)
        body["content"]["html_body"] = "{{ oops"
        with pytest.raises(InjectError) as info:
            await inject.inject(body, peer_address=PEER)
        assert info.value.status == 422
        assert len(node.node.spool) == 0


async def test_deferred_generation_answers_at_once_and_expands_in_background(
    tmp_path: Path, sink_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "CHUNK", 4)
    sink = await sink_factory()
    settings = node_settings(
        tmp_path, routes=[{"domains": ["*"], "relay": f"{sink.host}:{sink.port}"}]
    )
    body = request(10, deferred_generation=True)
    body["recipients"].append({"email": "not-an-address"})
    async with InProcessNode(settings) as node:
        inject = new_service(node)
        answer = await inject.inject(body, peer_address=PEER)
        assert answer == {
            "success_count": 0,
            "fail_count": 0,
            "failed_recipients": [],
            "errors": [],
        }
        messages = await sink.wait_for_messages(10)
        await wait_until(lambda: len(node.node.spool) == 0, what="the batch entry removed")
        await inject.close(5)
    assert Counter(r for m in messages for r in m.rcpt_tos) == Counter(
        f"user{i}@example.com" for i in range(10)
    )


async def test_deferred_request_errors_are_still_immediate(tmp_path: Path) -> None:
    async with InProcessNode(node_settings(tmp_path)) as node:
        inject = new_service(node)
        body = request(3, deferred_generation=True, template_dialect="Handlebars")
        with pytest.raises(InjectError) as info:
            await inject.inject(body, peer_address=PEER)
        assert info.value.status == 422
        assert len(node.node.spool) == 0


async def test_batch_closed_before_expansion_resumes_at_next_start(
    tmp_path: Path, sink_factory: Any
) -> None:
    relay = relay_target()
    settings = node_settings(tmp_path, routes=relay.routes)
    node, inject = recovering_node(settings)
    async with node:
        await inject.close(5)  # as at shutdown: nothing expands any more
        await inject.inject(request(6, deferred_generation=True), peer_address=PEER)
        assert len(node.node.spool) == 1  # the durable request

    sink = await relay.start_sink(sink_factory)
    node, inject = recovering_node(settings)
    async with node:
        messages = await sink.wait_for_messages(6)
        await wait_until(lambda: len(node.node.spool) == 0, what="everything delivered")
        await inject.close(5)
    assert sorted(r for m in messages for r in m.rcpt_tos) == sorted(
        f"user{i}@example.com" for i in range(6)
    )


async def test_recovery_after_an_interruption_generates_each_recipient_once(
    tmp_path: Path, sink_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "CHUNK", 5)
    relay = relay_target()  # the sink is down before the "crash"
    settings = node_settings(tmp_path, routes=relay.routes)
    body = request(12, deferred_generation=True)
    batch_id = batch.new_batch_id()
    # The state a crash in the middle of the second chunk leaves: the first chunk done
    # (`next` = 5), recipients 5 and 6 of the second chunk stored, 7..11 not yet.
    node, _unused = recovering_node(settings)
    async with node:
        meta = batch.new_batch_meta(peer=PEER, received=1_700_000_000.0) | {"next": 5}
        await node.node.spool.store(batch_id, meta, batch.encode_request(body))
        plan = RequestPlan(
            parse_request(body),
            engine=TemplateEngine(),
            checker=AddressChecker(),
            hostname="mta.test",
            peer_address=PEER,
            now=meta["received"],
        )
        for i in range(7):
            generated = plan.generate(i, batch.message_id(batch_id, i))
            await node.node.acceptor.store(_inbound(plan, generated), batch.message_id(batch_id, i))
        assert len(node.node.spool) == 8

    sink = await relay.start_sink(sink_factory)
    node, inject = recovering_node(settings)
    async with node:
        messages = await sink.wait_for_messages(12)
        await wait_until(lambda: len(node.node.spool) == 0, what="batch removed")
        await node.wait_for_record("Delivery", count=12)
        await inject.close(5)
    assert len(messages) == 12
    assert Counter(r for m in messages for r in m.rcpt_tos) == Counter(
        f"user{i}@example.com" for i in range(12)
    )
    ids = {parsed(m.data)["Message-ID"] for m in messages}
    assert ids == {f"<{batch_id}-{i}@mta.test>" for i in range(12)}


async def test_recover_refuses_an_unreadable_batch_meta(tmp_path: Path) -> None:
    async with InProcessNode(node_settings(tmp_path)) as node:
        inject = new_service(node)
        inject.recover("some-id", {"v": 99, "kind": batch.BATCH_KIND})
        inject.recover("other-id", {"v": 1, "kind": batch.BATCH_KIND, "next": -1})
        await inject.close(1)


def _inbound(plan: RequestPlan, generated: Generated) -> Inbound:
    return Inbound(
        sender=plan.sender,
        recipients=(generated.recipient,),
        data=generated.data,
        reception_protocol="HTTP",
        peer_address=PEER,
        peer_name="",
        smtputf8=generated.smtputf8,
    )
