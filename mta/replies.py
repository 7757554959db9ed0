"""SMTP replies as values, and the errors that carry them.

A reply is what a peer should be told: the basic code (RFC 5321 4.2), the enhanced status code
(RFC 3463) and a human text. Errors raised anywhere in the node carry the reply the SMTP client
(or, mapped, the HTTP client) should get, so the front ends never assemble reply strings inline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_REPLY_LINE = re.compile(
    r"^(?P<code>[2-5]\d\d)(?:[ -](?P<enh>[245]\.\d{1,3}\.\d{1,3})?\s*(?P<text>.*))?$"
)


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: `code`, enhanced status `enhanced` ("4.3.0", may be empty) and `text`."""

    code: int
    enhanced: str
    text: str

    @property
    def is_success(self) -> bool:
        return 200 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        return self.code >= 500

    def __str__(self) -> str:
        if self.enhanced:
            return f"{self.code} {self.enhanced} {self.text}"
        return f"{self.code} {self.text}"

    def with_text(self, text: str) -> Reply:
        return Reply(self.code, self.enhanced, text)

    @classmethod
    def parse(cls, line: str) -> Reply:
        """Parse "451 4.3.0 text" (enhanced code optional); raise ValueError if not a reply."""
        match = _REPLY_LINE.match(line.strip())
        if match is None:
            raise ValueError(f"not an SMTP reply: {line!r}")
        return cls(int(match["code"]), match["enh"] or "", (match["text"] or "").strip())

    @classmethod
    def from_response(cls, code: int, message: str) -> Reply:
        """Build from a client library's (code, text) pair, splitting a leading enhanced code."""
        first, _, rest = message.partition(" ")
        if re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", first):
            return cls(code, first, rest.strip())
        return cls(code, "", message.strip())


# Success
S250_OK = Reply(250, "2.0.0", "OK")
S250_SENDER_OK = Reply(250, "2.1.0", "Sender OK")
S250_RECIPIENT_OK = Reply(250, "2.1.5", "Recipient OK")
S250_QUEUED = Reply(250, "2.0.0", "OK queued")
S354_START_INPUT = Reply(354, "", "End data with <CR><LF>.<CR><LF>")

# Transient (4xx)
S421_SHUTTING_DOWN = Reply(421, "4.3.2", "Service shutting down, try again later")
S421_IDLE_TIMEOUT = Reply(421, "4.4.2", "Idle timeout, closing connection")
S421_TOO_MANY_CONNECTIONS = Reply(421, "4.7.0", "Too many connections, try again later")
S421_TOO_MANY_ERRORS = Reply(421, "4.7.0", "Too many errors, closing connection")
S451_SPOOL_UNAVAILABLE = Reply(451, "4.3.0", "Spool unavailable, try again later")
S451_LOCAL_ERROR = Reply(451, "4.3.0", "Local error in processing")
S452_SPOOL_FULL = Reply(452, "4.3.1", "Insufficient system storage")
S452_TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
S451_SCHEDULED_SUSPENDED = Reply(451, "4.4.4", "scheduled queue is suspended")
S421_AUTH_FAILURES = Reply(421, "4.7.0", "Too many failed authentication attempts, closing")
S451_MESSAGE_RATE = Reply(451, "4.7.1", "Message rate limit exceeded, try again later")
S452_DATA_IN_FLIGHT = Reply(452, "4.3.1", "Insufficient system resources, try again later")

# Permanent (5xx)
S500_LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long")
S550_RELAY_DENIED = Reply(550, "5.7.1", "Relaying denied")
S550_BARE_LINE_ENDINGS = Reply(
    550, "5.6.11", "Message contains bare CR or bare LF; use CRLF line endings"
)
S552_MESSAGE_TOO_BIG = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
S553_BAD_ADDRESS = Reply(553, "5.1.3", "Bad address syntax")
S553_SENDER_NOT_ALLOWED = Reply(553, "5.7.1", "Sender address not allowed for this user")
S554_PROXY_REFUSED = Reply(554, "5.7.1", "Connection refused: not a trusted proxy")
S554_MAIL_LOOP = Reply(554, "5.4.6", "Mail loop detected: MX points back to this node")
S556_NULL_MX = Reply(556, "5.1.10", "Recipient domain does not accept mail (null MX)")
S550_NO_SUCH_DOMAIN = Reply(550, "5.1.2", "Recipient domain does not exist")
S551_MESSAGE_EXPIRED = Reply(551, "5.4.7", "Delivery time expired")


class MtaError(Exception):
    """Root of the node's errors; `reply` is what the peer should be told."""

    default_reply: Reply = S451_LOCAL_ERROR

    def __init__(self, reply: Reply | None = None, detail: str = "") -> None:
        self.reply = reply if reply is not None else self.default_reply
        super().__init__(detail or str(self.reply))


class TransientError(MtaError):
    """Try again later: 4xx."""

    default_reply = S451_LOCAL_ERROR


class PermanentError(MtaError):
    """Never going to work: 5xx."""

    default_reply = Reply(554, "5.0.0", "Permanent failure")
