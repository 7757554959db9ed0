"""The automation engine: actions, triggers, expiry, extension, internal responses."""

from __future__ import annotations

import pytest

from shaping.tsa.events import (
    ConfigOverride,
    ReadyQueueSuspension,
    SchedQueueBounce,
    SchedQueueSuspension,
)
from shaping.tsa.state import AutomationState, rule_hash
from tests.support.tsa import SITE, FakeClock, record, rules_from


def rule_toml(action: str, *, trigger: str = '"Immediate"', extra: str = "") -> str:
    return f"""
["default"]
[["default".automation]]
regex = "4\\\\.7\\\\.28"
action = {action}
trigger = {trigger}
duration = "1h"
{extra}
"""


def engine(action: str, clock: FakeClock | None = None, **kwargs: str) -> AutomationState:
    rules = rules_from(rule_toml(action, **kwargs))
    return AutomationState(lambda: rules, clock or FakeClock())


def test_suspend_makes_a_ready_queue_suspension() -> None:
    state = engine('"Suspend"')
    [event] = state.observe(record(source="ip-1"))
    assert isinstance(event, ReadyQueueSuspension)
    assert (event.site_name, event.source, event.expires) == (SITE, "ip-1", 1000.0 + 3600)
    assert "421 4.7.28 rate limited" in event.reason
    [(rule, _)] = rules_from(rule_toml('"Suspend"')).resolve("example.com").automation
    assert event.rule_hash == rule_hash(rule)
    assert state.active() == [event]


def test_unspecified_source_and_kumomta_site_spelling() -> None:
    state = engine('"Suspend"')
    [event] = state.observe(record(site=f"ip-9->{SITE}"))
    assert isinstance(event, ReadyQueueSuspension)
    assert (event.site_name, event.source) == (SITE, "unspecified")


def test_suspend_tenant_and_campaign() -> None:
    tenant = engine('"SuspendTenant"')
    assert tenant.observe(record()) == []  # no tenant on the record: nothing to suspend
    [event] = tenant.observe(record(queue="camp:acme@example.com"))
    assert isinstance(event, SchedQueueSuspension)
    assert (event.domain, event.tenant, event.campaign) == ("example.com", "acme", None)
    campaign = engine('"SuspendCampaign"')
    [event] = campaign.observe(record(meta={"tenant": "acme", "campaign": "spring"}))
    assert isinstance(event, SchedQueueSuspension)
    assert (event.tenant, event.campaign) == ("acme", "spring")
    assert campaign.observe(record(queue="acme@example.com")) == []


@pytest.mark.parametrize(
    ("action", "tenant", "campaign"),
    [("Bounce", None, None), ("BounceTenant", "acme", None), ("BounceCampaign", "acme", "c1")],
)
def test_bounce_actions(action: str, tenant: str | None, campaign: str | None) -> None:
    state = engine(f'"{action}"')
    [event] = state.observe(record(queue="c1:acme@example.com"))
    assert isinstance(event, SchedQueueBounce)
    assert (event.domain, event.tenant, event.campaign) == ("example.com", tenant, campaign)
    assert state.bounces_json()[0]["domain"] == "example.com"


def test_set_config_applies_to_the_site_and_set_domain_config_to_the_domain() -> None:
    action = (
        '[{SetConfig = {name = "max_message_rate", value = "1/minute"}},'
        ' {SetDomainConfig = {name = "connect_timeout", value = "90s"}}]'
    )
    state = engine(action)
    site, domain = state.observe(record(source="ip-1"))
    assert isinstance(site, ConfigOverride) and isinstance(domain, ConfigOverride)
    assert (site.option, site.value, site.mx_rollup) == ("max_message_rate", "1/m", True)
    assert (domain.option, domain.value, domain.mx_rollup) == ("connect_timeout", "1m30s", False)
    assert (site.domain, site.site_name, site.source) == ("example.com", SITE, "ip-1")
    assert sorted(e.option for e in state.overrides()) == ["connect_timeout", "max_message_rate"]


def test_non_matching_responses_and_other_record_types_do_nothing() -> None:
    state = engine('"Suspend"')
    assert state.observe(record("ok", code=250, enhanced=(2, 0, 0), type="Delivery")) == []
    assert state.observe(record("mailbox full", code=452, enhanced=(4, 2, 2))) == []
    assert state.observe(record(type="Reception")) == []
    assert state.observe({"type": "Bounce", "recipient": "postmaster"}) == []
    assert state.active() == [] and state.records_seen == 4


def test_threshold_fires_on_the_nth_match_within_the_period() -> None:
    clock = FakeClock(1000.0)
    state = engine('"Suspend"', clock, trigger='{Threshold = "3/min"}')
    for moment in (1000.0, 1010.0):
        clock.now = moment
        assert state.observe(record(timestamp=moment)) == []
    clock.now = 1020.0
    [event] = state.observe(record(timestamp=1020.0))
    assert event.expires == 1020.0 + 3600


def test_threshold_ignores_matches_older_than_the_period() -> None:
    clock = FakeClock(1000.0)
    state = engine('"Suspend"', clock, trigger='{Threshold = "2/min"}')
    assert state.observe(record(timestamp=1000.0)) == []
    clock.now = 1061.0  # the first match has left the one-minute window
    assert state.observe(record(timestamp=1061.0)) == []
    clock.now = 1070.0
    assert len(state.observe(record(timestamp=1070.0))) == 1


def test_threshold_counts_per_site_and_source() -> None:
    state = engine('"Suspend"', trigger='{Threshold = "2/min"}')
    assert state.observe(record(source="ip-1")) == []
    assert state.observe(record(source="ip-2")) == []
    assert state.observe(record(site="mx.other.test")) == []
    assert len(state.observe(record(source="ip-1"))) == 1


def test_expiry_and_extension() -> None:
    clock = FakeClock(1000.0)
    state = engine('"Suspend"', clock)
    [first] = state.observe(record(timestamp=1000.0))
    assert state.observe(record(timestamp=1000.0)) == []  # nothing new: not reported
    clock.now = 1500.0
    [extended] = state.observe(record(timestamp=1500.0))
    assert extended.key() == first.key() and extended.expires == 1500.0 + 3600
    assert state.active() == [extended]
    assert state.active(now=1500.0 + 3600) == []
    assert state.counts()["ReadyQSuspension"] == 0


def test_a_record_whose_effect_already_expired_is_ignored() -> None:
    state = engine('"Suspend"', FakeClock(10_000.0))
    assert state.observe(record(timestamp=1000.0)) == []


def test_internal_responses_need_match_internal() -> None:
    state = engine('"Suspend"')
    assert state.observe(record(command=None)) == []
    assert state.observe(record("KumoMTA internal: rate limited 4.7.28", code=451)) == []
    internal = engine('"Suspend"', extra="match_internal = true")
    assert len(internal.observe(record(command=None))) == 1


def test_suspensions_json_shape() -> None:
    state = AutomationState(
        lambda: rules_from(rule_toml('["Suspend", "SuspendTenant"]')), FakeClock()
    )
    state.observe(record(queue="acme@example.com", source="ip-1"))
    body = state.suspensions_json()
    [ready] = body["ready_q"]
    [sched] = body["sched_q"]
    assert set(ready) == {"rule_hash", "site_name", "source", "reason", "expires"}
    assert ready["expires"] == "1970-01-01T01:16:40.000000Z"
    assert set(sched) == {"rule_hash", "domain", "tenant", "campaign", "reason", "expires"}
    assert (sched["tenant"], sched["campaign"]) == ("acme", None)


def test_rollup_domain_rules_apply_to_its_site_once_learned() -> None:
    rules = rules_from(
        """
["gmail.com"]
mx_rollup = true
[["gmail.com".automation]]
regex = "4\\\\.7\\\\.28"
action = "Suspend"
duration = "1h"
"""
    )
    state = AutomationState(lambda: rules, FakeClock())
    google = "alt1.gmail-smtp-in.l.google.com|gmail-smtp-in.l.google.com"
    vanity = record(recipient="u@googlemail.com", site=google)
    assert state.observe(vanity) == []  # gmail.com's site is not known yet
    state.observe(record("busy", enhanced=(4, 2, 1), recipient="u@gmail.com", site=google))
    [event] = state.observe(vanity)
    assert isinstance(event, ReadyQueueSuspension) and event.site_name == google
    assert state.observe(record(recipient="u@other.test", site="mx.other.test")) == []
