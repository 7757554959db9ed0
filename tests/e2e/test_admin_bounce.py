"""An admin bounce removes queued mail, keeps bouncing new matches while it lasts, then stops.

The relay route points at a port where nothing listens until the sink starts, so mail stays
queued (retried every second) while the bounce is made.
"""

from __future__ import annotations

from tests.integration.test_admin_harness import AdminNode
from tests.support.node import node_settings, wait_until
from tests.support.scenario import relay_target

BOUNCE = "/api/admin/bounce/v1"
SENDER = "alice@example.org"


async def test_admin_bounce_of_queued_mail(tmp_path, sink_factory) -> None:
    relay = relay_target()
    async with AdminNode(node_settings(tmp_path, routes=relay.routes)) as node:
        await node.send(SENDER, ["bob@example.com", "carol@example.com"])
        await node.send(SENDER, ["dave@example.net"])
        await node.wait_for_record("TransientFailure", "bob@example.com")
        await node.wait_for_record("TransientFailure", "dave@example.net")

        created = await node.ok(
            "POST", BOUNCE, {"domain": "example.com", "reason": "bad send", "duration": "2s"}
        )
        assert set(created) == {"id", "bounced", "total_bounced"}
        assert created["total_bounced"] == sum(created["bounced"].values())
        [bob] = await node.wait_for_record("AdminBounce", "bob@example.com")
        await node.wait_for_record("AdminBounce", "carol@example.com")
        assert bob["response"]["code"] == 551
        assert bob["response"]["enhanced_code"] == {"class": 5, "subject": 7, "detail": 1}
        assert bob["response"]["content"] == "Administrator bounced with reason: bad send"
        assert bob["queue"] == "example.com" and bob["site"] == "localhost"
        await wait_until(lambda: len(node.node.spool) == 1, what="the bounced message removed")

        # While the rule lasts, a new matching message is bounced as it arrives.
        await node.send(SENDER, ["erin@example.com"])
        await node.wait_for_record("AdminBounce", "erin@example.com")
        [rule] = await node.ok("GET", BOUNCE)
        assert rule["id"] == created["id"] and rule["domain"] == "example.com"
        assert rule["bounced"] == {"example.com": 2} and rule["total_bounced"] == 2

        # The sink comes up: only the other domain's mail is delivered.
        sink = await relay.start_sink(sink_factory)
        [dave] = await sink.wait_for_messages(1)
        assert dave.rcpt_tos == ["dave@example.net"]
        await node.wait_queued(0)

        # Once the rule expired, new mail for the domain is queued and delivered normally.
        await wait_until(lambda: not node.admin.bounces(), timeout=5, what="the rule to expire")
        assert await node.ok("GET", BOUNCE) == []
        await node.send(SENDER, ["frank@example.com"])
        await node.wait_for_record("Delivery", "frank@example.com")

    assert [m.rcpt_tos for m in sink.messages] == [["dave@example.net"], ["frank@example.com"]]
    assert node.of_type("Bounce") == []  # an admin bounce sends no DSN, as in KumoMTA
    assert len(node.node.spool) == 0


async def test_leg_in_flight_is_bounced_when_its_attempt_leaves_it_queued(
    tmp_path, sink_factory
) -> None:
    relay = relay_target()
    sink = await relay.start_sink(
        sink_factory, stall="DATA", stall_seconds=1.0, data_reply="451 4.3.0 try later"
    )
    async with AdminNode(node_settings(tmp_path, routes=relay.routes)) as node:
        await node.send(SENDER, ["bob@example.com"])
        await wait_until(lambda: sink.transactions == 1, what="the attempt to be in flight")

        created = await node.ok("POST", BOUNCE, {"reason": "everything", "duration": "1m"})
        assert created["total_bounced"] == 0  # in flight: left to its attempt, as KumoMTA
        [transient] = await node.wait_for_record("TransientFailure", "bob@example.com")
        [bounced] = await node.wait_for_record("AdminBounce", "bob@example.com")
        await node.wait_queued(0)
        [rule] = await node.ok("GET", BOUNCE)

    assert transient["response"]["code"] == 451
    assert bounced["num_attempts"] == 1
    assert rule["bounced"] == {"example.com": 1}
    assert node.of_type("Delivery") == []


async def test_suppressed_logging_still_bounces(tmp_path) -> None:
    relay = relay_target()
    async with AdminNode(node_settings(tmp_path, routes=relay.routes)) as node:
        await node.send(SENDER, ["bob@example.com"])
        await node.wait_for_record("TransientFailure", "bob@example.com")
        body = {"queue_names": ["example.com"], "reason": "quiet", "suppress_logging": True}
        await node.ok("POST", BOUNCE, body)
        await node.wait_queued(0)
        [rule] = await node.ok("GET", BOUNCE)

    assert rule["total_bounced"] == 1
    assert rule["queue_names"] == ["example.com"]
    assert node.of_type("AdminBounce") == []
