"""Replies the front end needs beyond mta.replies, and the completion of aiosmtpd's own replies.

aiosmtpd answers many commands itself ("250 OK", "503 Error: need MAIL command", ...) without
an enhanced status code. We advertise ENHANCEDSTATUSCODES, and RFC 2034 then requires one on
every reply except the greeting and the answers to EHLO/HELO, so each such reply gets the
RFC 3463 default for its basic code on its way out.
"""

from __future__ import annotations

import re

from mta.replies import S500_LINE_TOO_LONG, Reply

S500_UNKNOWN_COMMAND = Reply(500, "5.5.1", "Command not recognized")
S501_PATH_TOO_LONG = Reply(501, "5.1.3", "Path too long")  # RFC 5321 4.5.3.1.3
S501_DATA_SYNTAX = Reply(501, "5.5.4", "Syntax: DATA")
S503_NEED_RCPT = Reply(503, "5.5.1", "Error: need RCPT command")
S553_NON_ASCII_ADDRESS = Reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")  # RFC 6531 3.5

# Replies aiosmtpd sends with texts of its own that we replace with ours.
_REPLACED = {
    "500 Command line too long": S500_LINE_TOO_LONG,
}

# RFC 3463 / RFC 5248 defaults for the basic codes aiosmtpd uses.
_DEFAULT_ENHANCED = {
    221: "2.0.0",
    250: "2.0.0",
    252: "2.0.0",
    421: "4.7.0",
    454: "4.7.0",
    500: "5.5.2",
    501: "5.5.4",
    502: "5.5.1",
    503: "5.5.1",
    504: "5.5.4",
    530: "5.7.0",
    535: "5.7.8",
    552: "5.3.4",
    553: "5.1.3",
    554: "5.7.0",
    555: "5.5.4",
}
_HAS_ENHANCED = re.compile(r"[245]\.\d{1,3}\.\d{1,3}(?: |$)")

# Syntax errors, unknown commands, bad sequence, unsupported parameters (RFC 5321 4.2.2, 4.2.4):
# the replies that count against the per-session error budget.
COMMAND_ERROR_CODES = frozenset({500, 501, 502, 503, 504, 555})


def complete_reply(line: str) -> str:
    """One final reply line with our text where we have one, else with an enhanced code."""
    replaced = _REPLACED.get(line)
    if replaced is not None:
        return str(replaced)
    code, separator, text = line[:3], line[3:4], line[4:]
    if separator != " " or not code.isdigit() or _HAS_ENHANCED.match(text):
        return line
    enhanced = _DEFAULT_ENHANCED.get(int(code))
    return f"{code} {enhanced} {text}" if enhanced else line


def reply_code(line: str) -> int:
    """The basic code of a reply line, 0 when the line does not start with one."""
    head = line[:3]
    return int(head) if head.isdigit() else 0
