"""The suppression list: recipients that hard-bounced are refused, per tenant, for a while.

Built by `build_suppression` from `[suppression]`: stored on the node (SQLite under the spool
directory) by default, or in Redis when the node has a Redis client (`[redis] url`), shared by
the whole cluster. See `service.Suppression` for the behaviour, `api` and `routes` for the
admin API (`openapi` documents it), `metrics` for the Prometheus collector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mta.config import RedisConfig, SuppressionConfig
from mta.suppression.entry import (
    S550_SUPPRESSED,
    Entry,
    RecipientSuppressed,
    StoreUnavailable,
    normalize,
)
from mta.suppression.redis_store import RedisStore
from mta.suppression.service import Suppression
from mta.suppression.store import ALL_TENANTS, LocalStore, SuppressionStore

__all__ = [
    "ALL_TENANTS",
    "S550_SUPPRESSED",
    "Entry",
    "LocalStore",
    "RecipientSuppressed",
    "RedisStore",
    "StoreUnavailable",
    "Suppression",
    "SuppressionStore",
    "build_suppression",
    "normalize",
]


def build_suppression(
    config: SuppressionConfig, *, spool_path: Path, redis: RedisConfig, redis_client: Any
) -> Suppression:
    """The node's list: in Redis when `redis_client` is given, else on the node."""
    store: SuppressionStore
    if redis_client is not None:
        store = RedisStore(redis_client, timeout=redis.timeout)
    else:
        store = LocalStore(spool_path)
    return Suppression(config, store)
