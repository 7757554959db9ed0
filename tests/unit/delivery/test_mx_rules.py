"""MX rules without sockets: ordering, shuffling, null MX, site naming, self-MX, TTLs."""

from __future__ import annotations

import random

import dns.rdata
import pytest

from mta.delivery.mx import (
    MAX_NEGATIVE_TTL,
    TEMPFAIL_TTL,
    Lookup,
    TtlBounds,
    address_result,
    connection_order,
    drop_self,
    ip_literal,
    is_null_mx,
    mx_records,
    mx_result,
    preference_groups,
    relay_site_name,
    site_name,
)
from mta.delivery.replies import S451_DNS_TEMPFAIL, S550_HOST_NOT_FOUND
from mta.replies import S550_NO_SUCH_DOMAIN, S556_NULL_MX


def mx(*texts: str) -> tuple[dns.rdata.Rdata, ...]:
    return tuple(dns.rdata.from_text("IN", "MX", text) for text in texts)


def addr(rdtype: str, *texts: str) -> Lookup:
    return Lookup("ok", tuple(dns.rdata.from_text("IN", rdtype, t) for t in texts), 300)


def test_mx_records_are_lowercased_without_trailing_dot() -> None:
    assert mx_records(mx("10 MX1.Example.COM.", "0 .")) == [(10, "mx1.example.com"), (0, "")]


def test_groups_are_ordered_by_preference_lowest_first() -> None:
    records = [(30, "c.example"), (10, "a.example"), (20, "b.example"), (10, "d.example")]
    assert preference_groups(records) == (
        ("a.example", "d.example"),
        ("b.example",),
        ("c.example",),
    )


def test_duplicate_host_keeps_its_best_preference_only() -> None:
    records = [(20, "a.example"), (10, "a.example"), (20, "b.example")]
    assert preference_groups(records) == (("a.example",), ("b.example",))


def test_root_targets_are_dropped_next_to_usable_ones() -> None:
    assert preference_groups([(0, ""), (10, "mx.example")]) == (("mx.example",),)


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([(0, "")], True),
        ([(0, ""), (0, "")], True),
        ([(0, ""), (10, "mx.example")], False),
        ([(10, "mx.example")], False),
        ([], False),
    ],
)
def test_null_mx_detection(records: list[tuple[int, str]], expected: bool) -> None:
    assert is_null_mx(records) is expected


def test_connection_order_keeps_groups_and_shuffles_inside_them() -> None:
    groups = (("a", "b", "c"), ("d",), ("e", "f"))
    seen_first: set[str] = set()
    rng = random.Random(1)
    for _ in range(60):
        order = connection_order(groups, rng)
        assert set(order[:3]) == {"a", "b", "c"}
        assert order[3] == "d"
        assert set(order[4:]) == {"e", "f"}
        seen_first.add(order[0])
    assert seen_first == {"a", "b", "c"}  # every equal-preference host gets to go first


def test_site_name_is_sorted_hosts_joined_with_bars() -> None:
    assert site_name((("mx2.example",), ("mx1.example", "backup.example"))) == (
        "backup.example|mx1.example|mx2.example"
    )
    assert relay_site_name("10.0.0.5", 2525) == "relay:10.0.0.5:2525"
    assert relay_site_name("::1", 2525) == "relay:[::1]:2525"


def test_same_mx_set_in_any_order_gives_one_site_name() -> None:
    one = preference_groups([(10, "b.example"), (20, "a.example")])
    other = preference_groups([(5, "a.example"), (5, "b.example")])
    assert site_name(one) == site_name(other) == "a.example|b.example"


def test_mx_result_maps_each_lookup_status() -> None:
    assert mx_result(Lookup("ok", mx("20 b.example.", "10 a.example."), 300)) == (
        ("a.example",),
        ("b.example",),
    )
    assert mx_result(Lookup("ok", mx("0 ."), 300)) == S556_NULL_MX
    assert mx_result(Lookup("nxdomain")) == S550_NO_SUCH_DOMAIN
    assert mx_result(Lookup("tempfail")) == S451_DNS_TEMPFAIL
    assert mx_result(Lookup("nodata")) is None  # implicit MX


def test_null_mx_reply_is_permanent_556_5_1_10() -> None:
    reply = mx_result(Lookup("ok", mx("0 ."), 300))
    assert reply == S556_NULL_MX
    assert (S556_NULL_MX.code, S556_NULL_MX.enhanced) == (556, "5.1.10")


def test_addresses_put_ipv4_first_and_drop_duplicates() -> None:
    result = address_result(addr("A", "192.0.2.1", "192.0.2.1"), addr("AAAA", "2001:db8::1"))
    assert result == ("192.0.2.1", "2001:db8::1")


def test_addresses_survive_a_failed_aaaa_lookup() -> None:
    assert address_result(addr("A", "192.0.2.1"), Lookup("tempfail")) == ("192.0.2.1",)


def test_no_addresses_is_transient_only_when_a_lookup_failed() -> None:
    assert address_result(Lookup("nodata"), Lookup("tempfail")) == S451_DNS_TEMPFAIL
    assert address_result(Lookup("nxdomain"), Lookup("nxdomain")) == S550_HOST_NOT_FOUND
    assert address_result(Lookup("nodata"), Lookup("nodata")) == S550_HOST_NOT_FOUND


def test_drop_self_discards_this_node_and_less_preferred_hosts() -> None:
    groups = (("a",), ("me", "b"), ("c",))
    assert drop_self(groups, lambda host: host == "me") == (("a",),)
    assert drop_self(groups, lambda host: host == "a") == ()
    assert drop_self(groups, lambda host: False) == groups


def test_ttl_bounds() -> None:
    bounds = TtlBounds(min_ttl=30, max_ttl=3600)
    assert bounds.clamp(Lookup("ok", (), 5)) == 30
    assert bounds.clamp(Lookup("ok", (), 86400)) == 3600
    assert bounds.clamp(Lookup("ok", (), 600)) == 600
    assert bounds.clamp(Lookup("nxdomain", (), 86400)) == MAX_NEGATIVE_TTL
    assert bounds.clamp(Lookup("tempfail")) == TEMPFAIL_TTL
    assert TtlBounds(min_ttl=0, max_ttl=10).clamp(Lookup("tempfail")) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("[192.0.2.1]", "192.0.2.1"),
        ("[IPv6:2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("mx.example.com", None),
    ],
)
def test_ip_literal(text: str, expected: str | None) -> None:
    assert ip_literal(text) == expected
