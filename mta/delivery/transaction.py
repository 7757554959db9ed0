"""One mail transaction's rules without I/O: MAIL parameters, DATA encoding, and the
bookkeeping that turns the replies to MAIL, RCPT, DATA and the final dot into one
outcome per recipient (RFC 5321 3.3)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from mta.replies import Reply

from .types import Job, Outcome

CRLF = b"\r\n"
END_OF_DATA = b".\r\n"  # RFC 5321 4.1.1.4
_LINE_ENDING = re.compile(rb"\r\n|\n|\r(?!\n)")


def encode_data(data: bytes) -> bytes:
    """The bytes to send after DATA's 354: CRLF line endings (any bare CR or LF becomes
    CRLF), lines starting with "." doubled (RFC 5321 4.5.2), a final CRLF, then ".CRLF"."""
    crlf = data.count(CRLF)
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:  # C-speed check, no copy
        data = _LINE_ENDING.sub(CRLF, data)
    if not data.endswith(CRLF):
        data += CRLF
    data = data.replace(b"\n.", b"\n..")
    if data.startswith(b"."):
        data = b"." + data
    return data + END_OF_DATA


def needs_smtputf8(job: Job) -> bool:
    """RFC 6531: non-ASCII addresses need SMTPUTF8."""
    return not all(address.isascii() for address in (job.sender, *job.recipients))


def size_limit(extensions: Mapping[str, str]) -> int | None:
    """The server's SIZE limit (RFC 1870), None when not advertised or unlimited (0)."""
    params = extensions.get("size")
    if params is None or not params.strip().isdigit():
        return None
    return int(params) or None


def mail_options(job: Job, extensions: Mapping[str, str]) -> list[str]:
    """ESMTP parameters for MAIL FROM given the server's EHLO keywords (lowercase)."""
    options: list[str] = []
    if "size" in extensions:
        options.append(f"SIZE={len(job.data)}")  # RFC 1870
    if "8bitmime" in extensions and not job.data.isascii():
        options.append("BODY=8BITMIME")  # RFC 6152
    if "smtputf8" in extensions and needs_smtputf8(job):
        options.append("SMTPUTF8")  # RFC 6531
    return options


class Transaction:
    """The replies of one transaction so far, and the outcomes they decide.

    Feed it the replies in protocol order; `outcomes()` gives every recipient an outcome,
    `fail_pending()` settles the recipients still waiting (connection lost, 421).
    """

    def __init__(self, job: Job, outcome: Callable[[Reply, str], Outcome] = Outcome) -> None:
        self.recipients = tuple(dict.fromkeys(job.recipients))
        self._outcome = outcome  # adds the session's peer and TLS details
        self._final: dict[str, Outcome] = {}
        self.accepted: list[str] = []
        self.phase = "MAIL"  # the command whose reply is awaited

    def begin(self, command: str) -> None:
        self.phase = command

    def _settle(self, recipients: list[str] | tuple[str, ...], reply: Reply, cmd: str) -> None:
        outcome = self._outcome(reply, cmd)
        for recipient in recipients:
            self._final.setdefault(recipient, outcome)

    def on_mail(self, reply: Reply) -> bool:
        """True when the sender was accepted; otherwise every recipient gets this reply."""
        if not 200 <= reply.code < 300:
            self._settle(self.recipients, reply, "MAIL")
            return False
        return True

    def on_rcpt(self, recipient: str, reply: Reply) -> None:
        if 200 <= reply.code < 300:
            self.accepted.append(recipient)
        else:
            self._settle([recipient], reply, "RCPT")

    def refuse(self, recipients: list[str] | tuple[str, ...], reply: Reply, cmd: str) -> None:
        """Settle recipients with a reply we made up (bad address, SMTPUTF8 needed)."""
        self._settle(recipients, reply, cmd)

    def on_data(self, reply: Reply) -> bool:
        """True on 354 (send the message); otherwise the accepted recipients get the reply."""
        if reply.code != 354:
            self._settle(self.accepted, reply, "DATA")
            return False
        return True

    def on_dot(self, reply: Reply) -> None:
        """The reply after the final dot decides every accepted recipient."""
        self._settle(self.accepted, reply, ".")

    def on_lmtp_dot(self, recipient: str, reply: Reply) -> None:
        """LMTP (RFC 2033 4.2): the final dot gets one reply per accepted recipient."""
        self._settle([recipient], reply, ".")

    def fail_pending(self, reply: Reply) -> None:
        """Recipients without a final answer get `reply` (the connection is gone)."""
        self._settle(self.recipients, reply, self.phase)

    @property
    def settled(self) -> bool:
        return len(self._final) == len(self.recipients)

    def outcomes(self) -> dict[str, Outcome]:
        missing = [r for r in self.recipients if r not in self._final]
        if missing:
            raise RuntimeError(f"transaction left recipients unsettled: {missing}")
        return {recipient: self._final[recipient] for recipient in self.recipients}
