"""A message on its way into the node, from any front end (SMTP, HTTP, the node's own DSNs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Inbound:
    """One received message, ready for the accept path.

    `data` is the whole message with CRLF line endings, our Received header prepended and
    Message-ID/Date added when the client left them out. `sender` is "" for the null
    reverse-path <>. `reception_protocol` is the Received header's "with" value ("HTTP" for
    the inject API). `meta` carries `tenant`, `campaign` and any other per-message metadata a
    front end knows (the HTTP API's recipient metadata); without them, tenant and campaign come
    from the X-Tenant / X-Campaign headers.
    """

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    reception_protocol: str
    peer_address: str
    peer_name: str
    smtputf8: bool
    meta: dict[str, Any] = field(default_factory=dict)
