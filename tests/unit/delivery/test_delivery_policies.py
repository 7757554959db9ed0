"""TLS policy decisions and own-listener (mail loop) detection, without sockets."""

from __future__ import annotations

import ssl

import pytest

from mta.delivery.local import OwnListeners
from mta.delivery.tls import TlsContexts, tls_action, verifies_certificate


@pytest.mark.parametrize(
    ("mode", "offered", "action"),
    [
        ("Opportunistic", True, "starttls"),
        ("Opportunistic", False, "plain"),
        ("OpportunisticInsecure", True, "starttls"),
        ("OpportunisticInsecure", False, "plain"),
        ("Required", True, "starttls"),
        ("Required", False, "fail"),
        ("RequiredInsecure", True, "starttls"),
        ("RequiredInsecure", False, "fail"),
        ("Disabled", True, "plain"),
        ("Disabled", False, "plain"),
    ],
)
def test_tls_action(mode: str, offered: bool, action: str) -> None:
    assert tls_action(mode, offered) == action


def test_unknown_tls_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown TLS mode"):
        tls_action("Sometimes", True)


def test_the_insecure_modes_do_not_verify_and_contexts_match() -> None:
    contexts = TlsContexts()
    modes = ("Opportunistic", "OpportunisticInsecure", "Required", "RequiredInsecure")
    assert [m for m in modes if verifies_certificate(m)] == ["Opportunistic", "Required"]
    verified = contexts.for_mode("Required")
    assert verified.verify_mode == ssl.CERT_REQUIRED and verified.check_hostname
    assert verified.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert contexts.for_mode("Opportunistic") is verified  # built once, shared
    loose = contexts.for_mode("RequiredInsecure")
    assert loose.verify_mode == ssl.CERT_NONE and not loose.check_hostname
    assert contexts.for_mode("OpportunisticInsecure") is loose


def test_exact_listener_matches_its_address_and_port_only() -> None:
    own = OwnListeners.from_listeners([("127.0.0.1", 2525)])
    assert own.is_own("127.0.0.1", 2525)
    assert not own.is_own("127.0.0.1", 25)
    assert not own.is_own("127.0.0.2", 2525)
    assert own.listens_on(2525) and not own.listens_on(25)


def test_wildcard_listener_covers_loopback_and_machine_addresses() -> None:
    own = OwnListeners.from_listeners([("0.0.0.0", 25), ("::", 26)], machine=["10.1.2.3"])
    assert own.is_own("127.0.0.53", 25)
    assert own.is_own("::1", 25)
    assert own.is_own("10.1.2.3", 26)
    assert not own.is_own("10.1.2.4", 25)
    assert not own.is_own("10.1.2.3", 2525)


def test_addresses_are_compared_in_canonical_form() -> None:
    own = OwnListeners.from_listeners([("[2001:DB8::0001]", 25)])
    assert own.is_own("2001:db8::1", 25)
