"""One suppression list entry, its wire and storage forms, and the reply that refuses it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from mta.replies import PermanentError, Reply

Source = Literal["bounce", "admin"]
# RFC 3463 X.1.1 "bad destination mailbox address": the code KumoMTA users and the issue expect.
S550_SUPPRESSED = Reply(550, "5.1.1", "recipient suppressed")
MAX_REASON = 200  # characters of the reason echoed in a reply; a bounce text can be long


class StoreUnavailable(Exception):
    """The suppression store cannot be read or written now (Redis away, disk error)."""


class RecipientSuppressed(PermanentError):
    """Every recipient of a message is on the suppression list: 550 5.1.1."""


def normalize(recipient: str) -> str:
    """The key of an address: no angle brackets or spaces, lower case.

    Lower case as a whole: the mailbox providers that hard-bounce treat local parts
    case-insensitively, and a list that missed `Bob@x` after `bob@x` bounced helps nobody.
    """
    return recipient.strip().removeprefix("<").removesuffix(">").strip().lower()


def tenant_key(tenant: str | None) -> str:
    """Storage key of a tenant: "" is the default tenant (messages without one)."""
    return tenant or ""


@dataclass(frozen=True, slots=True)
class Entry:
    """A suppressed recipient of one tenant (None: the default tenant), until `expires`."""

    tenant: str | None
    recipient: str
    reason: str
    classification: str
    source: Source
    created: float
    expires: float

    def expired(self, now: float) -> bool:
        return now >= self.expires

    def reply(self) -> Reply:
        """550 5.1.1 recipient suppressed: <reason> (one line, bounded)."""
        reason = " ".join(self.reason.split())[:MAX_REASON]
        return S550_SUPPRESSED.with_text(f"recipient suppressed: {reason}" if reason else "")

    def to_api(self) -> dict[str, Any]:
        """The admin API's form: times in RFC 3339."""
        return {
            **self.to_storage(),
            "created": rfc3339(self.created),
            "expires": rfc3339(self.expires),
        }

    def to_storage(self) -> dict[str, Any]:
        """The stored form (Redis hash values): times as epoch seconds."""
        return dataclasses.asdict(self)

    @classmethod
    def from_storage(cls, data: dict[str, Any]) -> Entry:
        """Raises KeyError, TypeError or ValueError for a value this version cannot read."""
        source = data["source"]
        if source not in ("bounce", "admin"):
            raise ValueError(f"unknown source {source!r}")
        return cls(
            tenant=data["tenant"] or None,
            recipient=str(data["recipient"]),
            reason=str(data["reason"]),
            classification=str(data["classification"]),
            source=source,
            created=float(data["created"]),
            expires=float(data["expires"]),
        )


def rfc3339(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")
