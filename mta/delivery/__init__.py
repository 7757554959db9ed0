"""Outbound delivery: MX resolution, SMTP sessions, connection reuse, per-recipient outcomes."""

from .engine import DeliveryEngine
from .mx import MxResolver
from .types import Job, Outcome, OutcomeKind, PathThrottled, PeerAddress, Site, SiteError

__all__ = [
    "DeliveryEngine",
    "Job",
    "MxResolver",
    "Outcome",
    "OutcomeKind",
    "PathThrottled",
    "PeerAddress",
    "Site",
    "SiteError",
]
