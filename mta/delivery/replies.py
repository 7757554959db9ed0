"""Replies the delivery engine makes up itself, and the ways it rewords a remote reply.

The enhanced codes follow RFC 3463: X.4.1 no answer from host, X.4.2 bad connection,
X.4.3 directory server failure, X.4.4 unable to route, X.7.4 security features not
supported, X.7.5 cryptographic failure, X.5.0 other protocol status.
"""

from __future__ import annotations

from functools import lru_cache

from mta.replies import S550_NO_SUCH_DOMAIN, Reply

from .types import PeerAddress

S451_DNS_TEMPFAIL = Reply(451, "4.4.3", "DNS lookup failed, try again later")
S550_NO_MX_OR_ADDRESS = S550_NO_SUCH_DOMAIN.with_text(
    "Recipient domain has no MX and no address records"
)
S550_HOST_NOT_FOUND = Reply(550, "5.4.4", "MX host not found")
S451_CONNECT_FAILED = Reply(451, "4.4.1", "Connection failed")
S451_CONNECTION_LOST = Reply(451, "4.4.2", "Connection lost")
S451_TIMEOUT = Reply(451, "4.4.2", "Timed out")
S451_TLS_NOT_OFFERED = Reply(451, "4.7.4", "TLS is required but was not offered")
S451_TLS_FAILED = Reply(451, "4.7.5", "TLS handshake failed")
S451_PROTOCOL_ERROR = Reply(451, "4.5.0", "Malformed reply from server")
S553_SMTPUTF8_REQUIRED = Reply(553, "5.6.7", "SMTPUTF8 is required but was not offered")
S451_INTERNAL_ERROR = Reply(451, "4.3.0", "Internal error in the delivery engine")


def connection_refused(peer: PeerAddress) -> Reply:
    return S451_CONNECT_FAILED.with_text(f"connection refused by {peer}")


def connect_timed_out(peer: PeerAddress) -> Reply:
    return S451_CONNECT_FAILED.with_text(f"connection to {peer} timed out")


def connect_failed(peer: PeerAddress, error: BaseException) -> Reply:
    return S451_CONNECT_FAILED.with_text(f"cannot connect to {peer}: {error}")


def connection_lost(peer: PeerAddress, command: str) -> Reply:
    return S451_CONNECTION_LOST.with_text(f"connection lost with {peer} in reply to {command}")


def timed_out(peer: PeerAddress, command: str) -> Reply:
    return S451_TIMEOUT.with_text(f"timed out waiting for {peer} in reply to {command}")


def tls_not_offered(peer: PeerAddress) -> Reply:
    return S451_TLS_NOT_OFFERED.with_text(f"TLS is required but was not offered by {peer}")


def tls_failed(peer: PeerAddress, error: BaseException) -> Reply:
    return S451_TLS_FAILED.with_text(f"TLS handshake with {peer} failed: {error}")


def protocol_error(peer: PeerAddress, command: str, detail: str) -> Reply:
    return S451_PROTOCOL_ERROR.with_text(f"{peer} in reply to {command}: {detail}")


def smtputf8_required(peer: PeerAddress) -> Reply:
    return S553_SMTPUTF8_REQUIRED.with_text(f"SMTPUTF8 is required but was not offered by {peer}")


# RFC 4954 6: 454 4.7.0 temporary authentication failure; 4.7.8 credentials invalid.
S454_AUTH_FAILED = Reply(454, "4.7.0", "Authentication failed")


def auth_without_tls(peer: PeerAddress) -> Reply:
    return S454_AUTH_FAILED.with_text(f"refusing to send credentials to {peer} without TLS")


def auth_unavailable(peer: PeerAddress, detail: str) -> Reply:
    return S454_AUTH_FAILED.with_text(f"cannot authenticate to {peer}: {detail}")


def auth_refused(peer: PeerAddress, mechanism: str, username: str, reply: Reply) -> Reply:
    """The relay refused our credentials (535): transient, so mail waits for a fixed secret."""
    return Reply(
        454,
        "4.7.8",
        f"{peer} refused AUTH {mechanism} as {username!r}: {reply}"
        " (check the route's auth; password_file is re-read when it changes)",
    )


def refused_to_talk(peer: PeerAddress, command: str, reply: Reply) -> Reply:
    """A remote reply that ended a session before MAIL, named after the host that sent it."""
    return reply.with_text(f"{peer} refused to talk to me: {reply} (in reply to {command})")


def as_transient(reply: Reply) -> Reply:
    """The 4xx form of a reply: 5yz becomes 451 and 5.x.y becomes 4.x.y; 4xx stays."""
    if reply.is_transient:
        return reply
    enhanced = f"4{reply.enhanced[1:]}" if reply.enhanced else "4.4.0"
    return Reply(451, enhanced, reply.text)


@lru_cache(maxsize=1024)  # MAIL/RCPT/DATA replies repeat; Reply is immutable
def from_response(code: int, message: str) -> Reply:
    """A Reply from aiosmtplib's (code, multi-line message), lines joined with spaces.

    Continuation lines that repeat the first line's enhanced code lose the repetition.
    """
    first, *rest = message.split("\n") or [""]
    reply = Reply.from_response(code, first)
    if not rest:
        return reply
    prefix = f"{reply.enhanced} " if reply.enhanced else ""
    lines = [line.removeprefix(prefix).strip() for line in rest]
    return reply.with_text(" ".join([reply.text, *lines]).strip())
