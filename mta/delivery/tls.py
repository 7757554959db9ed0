"""The STARTTLS policy of a site (the `enable_tls` modes) and the client TLS contexts.

The modes mean what they mean in KumoMTA, so shaping files move over unchanged:

- "Opportunistic" (the default): STARTTLS when offered, with the certificate chain and the
  MX host name verified. A host that does not offer STARTTLS gets plain text; a failed
  handshake (a bad certificate included) makes the host unusable, unless the path sets
  `opportunistic_tls_reconnect_on_failed_handshake`: then it is reconnected to in plain text.
- "OpportunisticInsecure": STARTTLS when offered, certificate not checked (RFC 7435).
- "Required": STARTTLS must be offered and the certificate and host name must verify.
- "RequiredInsecure": STARTTLS must be offered; the certificate is not checked.
- "Disabled": never STARTTLS.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

TlsAction = Literal["plain", "starttls", "fail"]

OPPORTUNISTIC = frozenset({"Opportunistic", "OpportunisticInsecure"})
REQUIRED = frozenset({"Required", "RequiredInsecure"})
VERIFIED = frozenset({"Opportunistic", "Required"})
DISABLED = "Disabled"
TLS_MODES = OPPORTUNISTIC | REQUIRED | {DISABLED}


def tls_action(mode: str, offered: bool) -> TlsAction:
    """What to do after EHLO: send STARTTLS, carry on in plain text, or give up on the host."""
    if mode not in TLS_MODES:
        raise ValueError(f"unknown TLS mode {mode!r}")
    if mode == DISABLED:
        return "plain"
    if offered:
        return "starttls"
    return "fail" if mode in REQUIRED else "plain"


def is_required(mode: str) -> bool:
    return mode in REQUIRED


def verifies_certificate(mode: str) -> bool:
    """Whether the mode checks the chain and the MX host name: "Opportunistic" and
    "Required" do, the "Insecure" modes encrypt without authenticating."""
    return mode in VERIFIED


def may_reconnect_in_plain(mode: str, allowed: bool) -> bool:
    """After a failed handshake, whether to reconnect without TLS (opportunistic modes
    only, and only when the path allows it: an attacker can make any handshake fail)."""
    return allowed and mode in OPPORTUNISTIC


class TlsContexts:
    """One verifying and one non-verifying client context, built on first use
    (loading the system CA store is slow) and shared by every session.

    The verifying context trusts the system store plus `cafile` (`[delivery] tls_ca_file`),
    TLS 1.2 at least; it also serves the MTA-STS policy fetch (RFC 8461 3.3).
    """

    def __init__(self, cafile: Path | str | None = None) -> None:
        self._cafile = cafile
        self._verified: ssl.SSLContext | None = None
        self._unverified: ssl.SSLContext | None = None

    def verified(self) -> ssl.SSLContext:
        if self._verified is None:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            if self._cafile is not None:
                context.load_verify_locations(cafile=self._cafile)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._verified = context
        return self._verified

    def for_mode(self, mode: str) -> ssl.SSLContext:
        if verifies_certificate(mode):
            return self.verified()
        if self._unverified is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            self._unverified = context
        return self._unverified
