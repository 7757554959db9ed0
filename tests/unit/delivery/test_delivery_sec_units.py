"""MTA-STS parsing and matching, what a policy does to a site, and the private-address rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from mta.config import ConfigError, config_from_mapping
from mta.delivery.private import AddressPolicy
from mta.delivery.sts import (
    S451_STS_NO_MATCHING_MX,
    PolicyError,
    StsPolicy,
    enforced_site,
    mx_matches,
    parse_policy,
    parse_txt,
    unmatched_hosts,
)
from mta.delivery.sts_fetch import policy_url
from mta.delivery.types import Site

# -- the TXT record (RFC 8461 3.1) -------------------------------------------------------


@pytest.mark.parametrize(
    ("records", "policy_id"),
    [
        (["v=STSv1; id=20160831085700Z;"], "20160831085700Z"),
        (["v=STSv1;id=abc"], "abc"),
        (["v=spf1 -all", "v=STSv1; id=1; ext=foo"], "1"),
    ],
)
def test_the_txt_record_gives_the_policy_id(records: list[str], policy_id: str) -> None:
    assert parse_txt(records) == policy_id


@pytest.mark.parametrize(
    "records",
    [
        [],
        ["v=spf1 -all"],
        ["v=STSv1; id=1", "v=STSv1; id=2"],  # two records: no policy
        ["v=STSv1;"],  # no id
        ["v=STSv1; id=not-alnum"],
        ["v=STSv1; id=" + "1" * 33],  # longer than 32
        ["id=1; v=STSv1"],  # v= must come first
    ],
)
def test_bad_or_ambiguous_txt_records_mean_no_policy(records: list[str]) -> None:
    with pytest.raises(PolicyError):
        parse_txt(records)


# -- the policy (RFC 8461 3.2) ------------------------------------------------------------


def test_a_policy_is_parsed_with_crlf_or_lf_and_unknown_keys_ignored() -> None:
    text = "version: STSv1\r\nmode: enforce\r\nmx: MX1.Example.com.\nmx: *.example.net\n"
    policy = parse_policy(text + "max_age: 604800\nextension: x\n")
    assert policy == StsPolicy("enforce", 604800, ("mx1.example.com", "*.example.net"))


def test_a_none_policy_needs_no_mx() -> None:
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 0\n").mx == ()


@pytest.mark.parametrize(
    "text",
    [
        "mode: enforce\nmx: a.test\nmax_age: 1\n",  # no version
        "mode: enforce\nversion: STSv1\nmx: a.test\nmax_age: 1\n",  # version not first
        "version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\n",  # no mx
        "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n",
        "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 31557601\n",  # over a year
        "version: STSv1\nmode: enforce\nmx: a.test\n",  # no max_age
        "<html>not a policy</html>",
    ],
)
def test_bad_policies_are_refused(text: str) -> None:
    with pytest.raises(PolicyError):
        parse_policy(text)


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("mx.example.com", "mx.example.com", True),
        ("mx.example.com", "MX.EXAMPLE.COM.", True),
        ("mx.example.com", "mx2.example.com", False),
        ("*.example.com", "mx.example.com", True),
        ("*.example.com", "a.mx.example.com", False),  # one label only (4.1)
        ("*.example.com", "example.com", False),
        ("*.example.com", "mx.example.org", False),
    ],
)
def test_mx_patterns(pattern: str, host: str, matches: bool) -> None:
    assert mx_matches(pattern, host) is matches


def test_the_policy_url() -> None:
    assert policy_url("example.com") == "https://mta-sts.example.com/.well-known/mta-sts.txt"
    assert policy_url("a.test", 8443) == "https://mta-sts.a.test:8443/.well-known/mta-sts.txt"


# -- a policy applied to a site ----------------------------------------------------------

SITE = Site("mx1.a.test|mx2.a.test", (("mx1.a.test",), ("mx2.a.test",)), 25, "Opportunistic")


def test_enforce_keeps_the_matching_hosts_with_required_tls_under_a_site_of_its_own() -> None:
    enforced = enforced_site(SITE, StsPolicy("enforce", 60, ("mx2.a.test",)))
    assert isinstance(enforced, Site)
    assert (enforced.hosts, enforced.tls) == ((("mx2.a.test",),), "Required")
    assert enforced.name == "mx1.a.test|mx2.a.test@mta-sts"


def test_enforce_on_a_site_that_already_complies_leaves_it_alone() -> None:
    required = Site("mx.a.test", (("mx.a.test",),), 25, "Required")
    assert enforced_site(required, StsPolicy("enforce", 60, ("*.a.test",))) is required


def test_enforce_with_no_matching_host_is_a_transient_reply() -> None:
    reply = enforced_site(SITE, StsPolicy("enforce", 60, ("mx.other.test",)))
    assert reply == S451_STS_NO_MATCHING_MX and reply.is_transient


def test_testing_mode_reports_the_hosts_it_would_refuse() -> None:
    assert unmatched_hosts(SITE, StsPolicy("testing", 60, ("mx1.a.test",))) == ["mx2.a.test"]


# -- private destinations ----------------------------------------------------------------


@pytest.mark.parametrize(
    "addr",
    [
        "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1",  # RFC 1918
        "100.64.0.1", "100.127.255.254",  # CGNAT
        "127.0.0.1", "127.8.9.10", "::1",  # loopback
        "169.254.169.254", "fe80::1",  # link-local, cloud metadata
        "0.0.0.0", "0.1.2.3", "::",  # this network, unspecified
        "fc00::1", "fd12:3456::1",  # unique local
        "::ffff:10.0.0.1", "::ffff:127.0.0.1",  # IPv4-mapped
        "not-an-address",
    ],
)  # fmt: skip
def test_private_and_local_addresses_are_refused_by_default(addr: str) -> None:
    assert not AddressPolicy().permits(addr)


@pytest.mark.parametrize(
    "addr", ["8.8.8.8", "172.32.0.1", "100.128.0.1", "192.0.2.1", "2001:4860::8888"]
)
def test_public_addresses_are_permitted(addr: str) -> None:
    assert AddressPolicy().permits(addr)


def test_allowed_private_networks_open_exactly_their_ranges() -> None:
    policy = AddressPolicy.from_config(["127.0.0.0/8", "10.5.0.0/16", "fd00::/8"])
    assert policy.permits("127.0.0.1") and policy.permits("10.5.9.9")
    assert policy.permits("fd00::25") and policy.permits("::ffff:127.0.0.2")
    assert not policy.permits("10.6.0.1")
    assert not policy.permits("169.254.169.254")


# -- configuration -----------------------------------------------------------------------


def test_the_outbound_security_keys_load_and_are_checked() -> None:
    delivery = config_from_mapping(
        {
            "delivery": {
                "tls_ca_file": "/etc/mta/ca.pem",
                "allowed_private_networks": ["10.0.0.0/8", "fd00::/8"],
                "mta_sts_port": 8443,
            }
        }
    ).delivery
    assert delivery.tls_ca_file == Path("/etc/mta/ca.pem")
    assert delivery.allowed_private_networks == ("10.0.0.0/8", "fd00::/8")
    assert delivery.mta_sts_port == 8443
    defaults = config_from_mapping({}).delivery
    assert (defaults.tls_ca_file, defaults.allowed_private_networks) == (None, ())
    assert defaults.mta_sts_port == 443
    with pytest.raises(ConfigError, match=r"delivery\.allowed_private_networks\[0\]"):
        config_from_mapping({"delivery": {"allowed_private_networks": ["10.0.0.1/8"]}})
    with pytest.raises(ConfigError, match=r"delivery\.mta_sts_port"):
        config_from_mapping({"delivery": {"mta_sts_port": 0}})
