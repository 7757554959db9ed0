"""The STARTTLS policy of a site (the `enable_tls` modes) and the client TLS contexts."""

from __future__ import annotations

import ssl
from typing import Literal

TlsAction = Literal["plain", "starttls", "fail"]

OPPORTUNISTIC = frozenset({"Opportunistic", "OpportunisticInsecure"})
REQUIRED = frozenset({"Required", "RequiredInsecure"})
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
    """Only "Required" checks the certificate chain and the MX host name; the opportunistic
    modes encrypt without authenticating (Postfix's "may" level, RFC 7435)."""
    return mode == "Required"


class TlsContexts:
    """One verifying and one non-verifying client context, built on first use
    (loading the system CA store is slow) and shared by every session."""

    def __init__(self, cafile: str | None = None) -> None:
        self._cafile = cafile
        self._verified: ssl.SSLContext | None = None
        self._unverified: ssl.SSLContext | None = None

    def for_mode(self, mode: str) -> ssl.SSLContext:
        if verifies_certificate(mode):
            if self._verified is None:
                self._verified = ssl.create_default_context(cafile=self._cafile)
            return self._verified
        if self._unverified is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            self._unverified = context
        return self._unverified
