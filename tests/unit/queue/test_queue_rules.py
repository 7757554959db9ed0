"""Admin rule matching (KumoMTA's semantics), replacement of equal criteria, and expiry."""

from __future__ import annotations

import pytest

from mta.queue.rules import AdminRule, Matcher, RuleSet

LEG = {"queue": "news:acme@example.com", "domain": "example.com", "tenant": "acme",
       "campaign": "news"}  # fmt: skip


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        (Matcher(), True),  # no criteria at all: every queue, as KumoMTA
        (Matcher(domain="example.com"), True),
        (Matcher(domain="EXAMPLE.com."), True),  # domains compare case-insensitively
        (Matcher(domain="example.org"), False),
        (Matcher(tenant="acme", campaign="news"), True),
        (Matcher(tenant="ACME"), False),  # tenants and campaigns compare exactly
        (Matcher(domain="example.com", campaign="other"), False),  # every criterion must hold
        (Matcher(routing_domain="relay.example"), False),  # the queue has no routing domain
        (Matcher(queue_names=("news:acme@example.com",)), True),
        # queue_names wins over the other criteria, as in KumoMTA.
        (Matcher(domain="example.org", queue_names=("news:acme@example.com",)), True),
        (Matcher(domain="example.com", queue_names=("example.com",)), False),
    ],
)
def test_matcher(matcher: Matcher, expected: bool) -> None:
    assert matcher.matches(**LEG) is expected


def test_a_criterion_the_queue_lacks_never_matches() -> None:
    plain = {"queue": "example.com", "domain": "example.com"}
    assert Matcher(domain="example.com").matches(**plain)
    assert not Matcher(tenant="acme").matches(**plain)
    assert not Matcher(campaign="news").matches(**plain)
    assert Matcher(routing_domain="r.test").matches(**plain, routing_domain="R.test")


def test_same_queue_names_in_any_order_are_the_same_criteria() -> None:
    assert Matcher(queue_names=("b", "a", "b")) == Matcher(queue_names=("a", "b"))
    assert Matcher().matches_everything and not Matcher(tenant="t").matches_everything


def _rule(rule_id: str, expires: float, **fields: object) -> AdminRule:
    return AdminRule(rule_id, "reason", created=0.0, expires=expires, **fields)  # type: ignore[arg-type]


def test_rules_expire_by_themselves() -> None:
    now = [100.0]
    rules = RuleSet(clock=lambda: now[0])
    rules.add(_rule("a", expires=110.0, matcher=Matcher(domain="x.test")))
    rules.add(_rule("b", expires=120.0, matcher=Matcher(domain="y.test")))
    assert [r.id for r in rules.active()] == ["a", "b"]
    now[0] = 110.0  # a rule ends when its expiry is reached
    assert [r.id for r in rules.active()] == ["b"]
    assert rules.get("a") is None and rules.remove("a") is None
    now[0] = 130.0
    assert rules.active() == [] and not rules


def test_equal_criteria_replace_and_longest_match_wins() -> None:
    rules = RuleSet(clock=lambda: 0.0)
    first = _rule("a", expires=10.0, matcher=Matcher(domain="x.test"))
    assert rules.add(first) is None
    assert rules.add(_rule("b", expires=5.0, matcher=Matcher(domain="X.test"))) is first
    rules.add(_rule("c", expires=50.0))
    assert [r.id for r in rules.active()] == ["b", "c"]
    found = rules.matching(lambda rule: rule.matcher.matches(queue="x.test", domain="x.test"))
    assert found is not None and found.id == "c"  # both match; "c" lasts longer
    assert rules.remove("c") is not None and rules.remove("c") is None


def test_ready_queue_rules_are_the_same_rule_by_name() -> None:
    rules = RuleSet(clock=lambda: 0.0)
    rules.add(_rule("a", expires=10.0, name="site"))
    rules.add(_rule("b", expires=10.0, name="other"))
    replaced = rules.add(_rule("c", expires=20.0, name="site"))
    assert replaced is not None and replaced.id == "a"
    assert sorted(r.name for r in rules.active()) == ["other", "site"]


def test_bounced_counts() -> None:
    rule = _rule("a", expires=10.0)
    rule.bounced["example.com"] += 2
    rule.bounced["example.org"] += 1
    assert rule.total_bounced == 3
    assert rule.remaining(4.0) == 6.0 and rule.remaining(11.0) == 0.0
