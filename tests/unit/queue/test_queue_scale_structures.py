"""The queue's compact in-memory forms (QueuedMessage, QueuedLeg) and the scheduler's entries."""

from __future__ import annotations

import pytest

from mta.queue import queued
from mta.queue.meta import check_meta, new_meta, record_meta
from mta.queue.queued import QueuedMessage
from mta.queue.scheduler import Scheduler


def _meta(recipients: list[str], **extra: object) -> dict[str, object]:
    meta = new_meta(
        sender="s@x.org",
        recipients=recipients,
        created=100.0,
        size=10,
        reception_protocol="ESMTP",
        peer="127.0.0.1",
        tenant="t",
        campaign="c",
        default_domain="node.local",
    )
    meta.update(extra)
    return meta


def test_reads_like_the_stored_meta() -> None:
    message = QueuedMessage(_meta(["a@example.com", "b@Example.com", "c@other.net"]))
    assert message["v"] == 1 and message["sender"] == "s@x.org" and message["created"] == 100.0
    assert message.get("tenant") == "t" and message.get("routing_domain") is None
    assert list(message["legs"]) == ["example.com", "other.net"]
    leg = message["legs"]["example.com"]
    assert leg["rcpts"] == ("a@example.com", "b@Example.com")
    assert leg["queue"] == "c:t@example.com" and leg["attempts"] == 0 and leg["due"] == 100.0
    assert leg.get("last_reply") is None and "other.net" in message["legs"]
    assert "nowhere.org" not in message["legs"]
    with pytest.raises(KeyError):
        message["legs"]["nowhere.org"]
    with pytest.raises(KeyError):
        leg["nothing"]
    assert record_meta(message) == {"tenant": "t", "campaign": "c"}


def test_stored_form_round_trips_with_unknown_keys() -> None:
    meta = _meta(["a@example.com"], meta={"x": 1}, routing_domain="r.example")
    message = QueuedMessage(meta)
    assert message["meta"] == {"x": 1} and message.get("routing_domain") == "r.example"
    stored = message.to_json()
    assert stored == meta and check_meta(stored) is stored
    assert dict(message.items()).keys() == meta.keys()
    stored["legs"]["example.com"]["rcpts"].append("z@example.com")  # a copy, not the live leg
    assert message["legs"]["example.com"]["rcpts"] == ("a@example.com",)


def test_legs_change_and_drop() -> None:
    message = QueuedMessage(_meta(["a@example.com", "c@other.net"]))
    leg = message.leg("example.com")
    assert leg is not None
    leg.attempts += 1
    leg.set_last_reply("451 4.4.1 refused")
    leg.due = 500.0
    assert message.to_json()["legs"]["example.com"] == {
        "rcpts": ["a@example.com"],
        "attempts": 1,
        "due": 500.0,
        "queue": "c:t@example.com",
        "last_reply": "451 4.4.1 refused",
    }
    assert message.drop_leg("example.com") is leg
    assert message.drop_leg("example.com") is None
    assert [leg.domain for leg in message.legs()] == ["other.net"]
    assert message.drop_leg("other.net") is not None and not message.legs()
    assert message.to_json()["legs"] == {}


def test_many_legs_are_found_by_domain() -> None:
    domains = [f"d{i}.example" for i in range(queued.MAX_TUPLE_LEGS * 3)]
    message = QueuedMessage(_meta([f"a@{d}" for d in domains]))
    assert len(message["legs"]) == len(domains) and list(message["legs"]) == domains
    assert message["legs"]["d17.example"]["rcpts"] == ("a@d17.example",)
    for domain in domains[::2]:
        assert message.drop_leg(domain) is not None
    assert [leg.domain for leg in message.legs()] == domains[1::2]
    assert message.leg("d0.example") is None and message.leg("d1.example") is not None


def test_equal_strings_are_shared() -> None:
    first = QueuedMessage(_meta(["a@example.com"]))
    second = QueuedMessage(_meta(["b@example.com"]))
    a, b = first.leg("example.com"), second.leg("example.com")
    assert a is not None and b is not None
    a.set_last_reply("".join(["451 ", "busy"]))
    b.set_last_reply("".join(["451 ", "busy"]))
    assert a.queue is b.queue and a.last_reply is b.last_reply


def test_scheduler_entries_with_equal_due_times() -> None:
    now = [0.0]
    fired: list[tuple[str, str]] = []
    scheduler: Scheduler[tuple[str, str]] = Scheduler(fired.append, clock=lambda: now[0])
    for msg_id in ("m2", "m1", "m3"):
        scheduler.schedule((msg_id, "example.com"), 10.0, "example.com")
    scheduler.cancel(("m1", "example.com"))
    scheduler.schedule(("m1", "example.com"), 10.0, "example.com")  # same time, again
    entry = scheduler.get(("m1", "example.com"))
    assert entry is not None and entry.key == ("m1", "example.com") and entry.due == 10.0
    now[0] = 10.0
    assert scheduler.fire_due() == 3  # the stale copy of m1 is skipped, not fired twice
    assert sorted(fired) == [("m1", "example.com"), ("m2", "example.com"), ("m3", "example.com")]
    assert len(scheduler) == 0 and scheduler.queue_sizes() == {}
