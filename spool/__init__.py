"""Durable, log-structured message spool with group commit.

The spool stores (message id, JSON-able meta dict, message bytes) and knows nothing
about SMTP or queues.
"""

from spool.errors import SpoolError, SpoolLocked, SpoolUnavailable, UnknownMessage
from spool.store import RecoveredMessage, Spool, SpoolStats

__all__ = [
    "RecoveredMessage",
    "Spool",
    "SpoolError",
    "SpoolLocked",
    "SpoolStats",
    "SpoolUnavailable",
    "UnknownMessage",
]
