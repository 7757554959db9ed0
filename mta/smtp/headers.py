"""Header additions made at reception, as pure functions on CRLF message bytes.

`ensure_message_id_and_date` is shared with the HTTP inject path.
"""

from __future__ import annotations

import functools
import re
import time
from datetime import UTC, datetime
from email.utils import format_datetime

from mta.ids import short_id, unique_hex

CRLF = b"\r\n"
_ID_OR_DATE = re.compile(rb"^(message-id|date)[ \t]*:", re.IGNORECASE | re.MULTILINE)
_UNSAFE_NAME = re.compile(r"[^0-9A-Za-z.\-_:\[\]]")  # keeps a client's HELO from shaping ours


def received_header(
    *,
    helo: str,
    peer_ip: str,
    hostname: str,
    protocol: str,
    queue_id: str,
    when: datetime | None = None,
    rdns: str | None = None,
) -> bytes:
    """A RFC 5321 4.4 trace header: `Received: from <helo> (<rdns-or-ip> [<ip>]) by ...`."""
    literal = f"IPv6:{peer_ip}" if ":" in peer_ip else peer_ip  # RFC 5321 4.1.3
    date = format_datetime(when) if when is not None else date_now()
    text = (
        f"Received: from {_safe_name(helo)} ({_safe_name(rdns or peer_ip)} [{literal}])\r\n"
        f"\tby {hostname} (mta) with {protocol} id {queue_id};\r\n"
        f"\t{date}\r\n"
    )
    return text.encode()


def date_now() -> str:
    """Now as a RFC 5322 date-time, which counts whole seconds: formatted once a second
    (format_datetime costs ~10 us, and every accepted message needs it once or twice)."""
    return _date_of(int(time.time()))


@functools.lru_cache(maxsize=2)
def _date_of(second: int) -> str:
    return format_datetime(datetime.fromtimestamp(second, UTC))


def _safe_name(name: str) -> str:
    return _UNSAFE_NAME.sub("_", name) or "unknown"


def with_protocol(*, extended: bool, tls: bool, authenticated: bool, smtputf8: bool) -> str:
    """The Received "with" value: RFC 3848 (ESMTP, ESMTPS, ESMTPSA) and RFC 6531 3.7.4."""
    base = "UTF8SMTP" if smtputf8 else "ESMTP" if extended else "SMTP"
    return base + ("S" if tls else "") + ("A" if authenticated else "")


def new_queue_id() -> str:
    """A short token for the Received header's "id"; not the accept path's message id."""
    return short_id()


def header_block(data: bytes) -> bytes:
    """The header section: everything before the first empty line (all of it if none)."""
    if data.startswith(CRLF):
        return b""
    end = data.find(CRLF + CRLF)
    return data if end < 0 else data[: end + len(CRLF)]


def ensure_message_id_and_date(data: bytes, hostname: str, *, now: datetime | None = None) -> bytes:
    """Prepend Message-ID and/or Date (RFC 5322 3.6) when the header block lacks them."""
    present = {name.lower() for name in _ID_OR_DATE.findall(header_block(data))}
    added = b""
    if b"message-id" not in present:
        added += f"Message-ID: <{unique_hex()}@{hostname}>\r\n".encode()
    if b"date" not in present:
        date = format_datetime(now) if now is not None else date_now()
        added += f"Date: {date}\r\n".encode()
    return added + data
