"""The versioned JSON metadata of a spooled message, and the queue names derived from it.

A message is split by recipient domain into "legs"; each leg lives in its own scheduled queue,
with its own attempt count and due time, so that one slow domain never holds up another.

    {"v": 1, "sender": "", "created": 0.0, "size": 0, "reception_protocol": "ESMTP",
     "peer": "127.0.0.1", "tenant": null, "campaign": null,
     "legs": {"example.com": {"rcpts": [...], "attempts": 0, "due": 0.0, "queue": "example.com",
                               "last_reply": null}}}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

META_VERSION = 1

# Read-only views: the stored JSON (dicts) or the queue's compact forms (`mta.queue.queued`).
Meta = Mapping[str, Any]
Leg = Mapping[str, Any]


class MetaError(ValueError):
    """Metadata that this version cannot read."""


def recipient_domain(recipient: str, default_domain: str) -> str:
    local, sep, domain = recipient.rpartition("@")
    if not sep or not local:
        return default_domain.lower()
    return domain.lower().rstrip(".")


def queue_name(domain: str, tenant: str | None = None, campaign: str | None = None) -> str:
    """KumoMTA's scheduled queue name: `campaign:tenant@domain`, absent parts dropped."""
    name = f"{tenant}@{domain}" if tenant else domain
    return f"{campaign}:{name}" if campaign else name


def new_meta(
    *,
    sender: str,
    recipients: Iterable[str],
    created: float,
    size: int,
    reception_protocol: str,
    peer: str,
    tenant: str | None,
    campaign: str | None,
    default_domain: str,
    leg_key: Callable[[str, str], str] | None = None,
) -> dict[str, Any]:
    """`leg_key(recipient, domain)`: the recipient's leg, when not its domain alone
    ("domain!routing-key": mta.routing); it also ends the leg's queue name."""
    legs: dict[str, dict[str, Any]] = {}
    for rcpt in recipients:
        domain = recipient_domain(rcpt, default_domain)
        if leg_key is not None:
            domain = leg_key(rcpt, domain)
        leg = legs.setdefault(domain, new_leg(queue_name(domain, tenant, campaign), created))
        leg["rcpts"].append(rcpt)
    return {
        "v": META_VERSION,
        "sender": sender,
        "created": created,
        "size": size,
        "reception_protocol": reception_protocol,
        "peer": peer,
        "tenant": tenant,
        "campaign": campaign,
        "legs": legs,
    }


def new_leg(queue: str, due: float) -> dict[str, Any]:
    return {"rcpts": [], "attempts": 0, "due": due, "queue": queue, "last_reply": None}


def check_meta(meta: Meta) -> Meta:
    """Validate metadata read back from the spool; raise MetaError when unreadable."""
    if meta.get("v") != META_VERSION:
        raise MetaError(f"unsupported metadata version {meta.get('v')!r}")
    legs = meta.get("legs")
    if not isinstance(legs, dict) or not isinstance(meta.get("sender"), str):
        raise MetaError("metadata lacks sender or legs")
    for leg in legs.values():
        if not isinstance(leg.get("rcpts"), list) or not isinstance(leg.get("due"), int | float):
            raise MetaError("a leg lacks recipients or a due time")
    return meta


def snapshot(meta: Meta) -> dict[str, Any]:
    """A copy safe to hand to the spool while the live dict keeps changing."""
    legs = {domain: {**leg, "rcpts": list(leg["rcpts"])} for domain, leg in meta["legs"].items()}
    return {**meta, "legs": legs}


def record_meta(meta: Meta) -> dict[str, Any]:
    """The `meta` object of a log record: tenant, campaign and the front end's metadata."""
    extra: dict[str, Any] = dict(meta.get("meta") or {})
    extra.update({key: meta[key] for key in ("tenant", "campaign") if meta.get(key)})
    return extra
