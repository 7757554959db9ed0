"""`[[routes]]` keys: accepted forms, and errors that name `routes[i].key`; the router's
matching (first match wins, addresses, regex, tenant, transport maps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mta.config import ConfigError, config_from_mapping
from mta.routing import MX, Rejected, Router
from mta.routing.transport_map import NO_ENTRY, parse_map


def routes(*entries: dict[str, object]):  # type: ignore[no-untyped-def]
    return config_from_mapping({"routes": list(entries)}).routes


def test_relay_string_or_list_and_auth_defaults() -> None:
    one, two = routes(
        {"relay": "smtp.sendgrid.net:587", "auth": {"username": "apikey", "password_env": "P"}},
        {"relay": ["a:2525", "b:2525"], "tls": "implicit", "tls_verify": False},
    )
    assert one.relay == ("smtp.sendgrid.net:587",) and one.tls is None
    assert two.relay == ("a:2525", "b:2525") and two.tls == "implicit"


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({"relay": "a:25", "lmtp": "b:24"}, "routes[0].lmtp: a route has one destination"),
        ({"relay": ["a:25", "b:x"]}, "routes[0].relay[1]:"),
        ({"regex": "(unclosed"}, "routes[0].regex: invalid regular expression"),
        ({"addresses": ["nobody"]}, "routes[0].addresses[0]:"),
        ({"lmtp": "host:notaport"}, "routes[0].lmtp:"),
        ({"auth": {"username": "u", "password_env": "P"}}, "routes[0].auth: only a relay"),
        ({"relay": "a:25", "auth": {"username": "u"}}, "routes[0].auth: give exactly one"),
        (
            {"relay": "a:25", "tls": "none", "auth": {"username": "u", "password_env": "P"}},
            'routes[0].tls: must be "starttls" or "implicit" when auth is set',
        ),
        ({"relay": "a:25", "tls": "maybe"}, "routes[0].tls: 'maybe' is not one of"),
        ({"transport_file": "/x", "format": "cdb"}, "routes[0].format:"),
        ({"relay": "a:25", "pool": "x"}, "routes[0].pool: unknown pool"),  # [egress.pools]
    ],
)
def test_errors_name_the_key(entry: dict[str, object], error: str) -> None:
    with pytest.raises(ConfigError) as raised:
        routes({"domains": ["*"], **entry})
    assert error in str(raised.value)


def test_first_match_wins_by_address_regex_tenant_domain() -> None:
    router = Router(
        routes(
            {"tenant": "acme", "domains": ["example.com"], "relay": "acme-relay:25"},
            {"addresses": ["Boss@Example.com"], "lmtp": "127.0.0.1:8024"},
            {"regex": r"^list-.*@", "discard": True},
            {"domains": ["*.example.com"], "relay": "sub:25"},
        )
    )
    assert router.decide("x@example.com", "example.com", "acme").name == "relay:acme-relay:25"
    assert router.decide("boss@example.com", "example.com", None).name == "lmtp:127.0.0.1:8024"
    assert router.decide("list-a@x.org", "x.org", None).kind == "discard"
    assert router.decide("a@mx.example.com", "mx.example.com", None).name == "relay:sub:25"
    assert router.decide("a@example.com", "example.com", None) == MX
    assert router.leg_key("boss@example.com", "example.com", None) == (
        "example.com!lmtp:127.0.0.1:8024"
    )
    assert router.leg_key("a@mx.example.com", "mx.example.com", None) == "mx.example.com"


def test_hash_map_lookup_order_and_covered_domains() -> None:
    entries = parse_map(
        "# comment\n"
        "ann@lists.example.com lmtp:[mailman-core]:8024\n"
        "ann-bounces@lists.example.com  lmtp:[mailman-core]:8024\n"
        ".whole.example.org lmtp:unix:/run/lmtp.sock\n"
        "bad line\n"
        "x@y.org smtp:[relay]:25\n",
        "postfix-hash-source",
    )
    verp = entries.lookup("ann-bounces+bob=example.net@lists.example.com", "lists.example.com")
    assert verp is not None and verp != NO_ENTRY
    assert verp.targets == ("mailman-core:8024",)  # type: ignore[union-attr]
    assert entries.lookup("nobody@lists.example.com", "lists.example.com") == NO_ENTRY
    sub = entries.lookup("a@mail.whole.example.org", "mail.whole.example.org")
    assert sub.targets == ("unix:/run/lmtp.sock",)  # type: ignore[union-attr]
    assert entries.lookup("a@example.net", "example.net") is None  # not covered
    assert entries.lookup("x@y.org", "y.org") is None  # an ignored line covers nothing


def test_regex_map_as_docker_mailman_writes_it() -> None:
    entries = parse_map(
        "/^ann(|\\+.*|-bounces(\\+.*)?|-request)@lists\\.example\\.com$/ lmtp:[mailman-core]:8024\n"
        "/^Case@x\\.org$/i lmtp:127.0.0.1:24\n",
        "postfix-regex",
    )
    assert entries.domains == {"lists.example.com", "x.org"}
    for address in ("ann@lists.example.com", "ANN-bounces+a=b.c@lists.example.com"):
        assert entries.lookup(address.lower(), "lists.example.com") not in (None, NO_ENTRY)
    assert entries.lookup("ann-owner@lists.example.com", "lists.example.com") == NO_ENTRY
    assert entries.lookup("case@x.org", "x.org") == NO_ENTRY  # "i" toggles to case-sensitive


def test_transport_file_missing_then_written(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "postfix_lmtp"
    router = Router(routes({"domains": ["*"], "transport_file": str(path)}), clock=lambda: now[0])
    assert router.decide("a@lists.test", "lists.test", None) == MX  # no map yet: not covered
    path.write_text("a@lists.test lmtp:[127.0.0.1]:8024\n")
    assert router.decide("b@lists.test", "lists.test", None) == MX  # not looked at yet
    now[0] += 1.5
    assert isinstance(router.decide("b@lists.test", "lists.test", None), Rejected)
    assert router.decide("a@lists.test", "lists.test", None).kind == "lmtp"
