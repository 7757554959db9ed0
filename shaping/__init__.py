"""Traffic shaping: throttle specs, GCRA throttles, connection leases, the Redis fallback,
and shaping.toml rules (KumoMTA's formats). Never imports ``mta``.

The delivery engine talks to :class:`Shaper` (``shaping.gate``) with an
:class:`EgressPathConfig` from :meth:`ShapingRules.resolve`.
"""

from .automation import Action, AutomationRule
from .fallback import RedisHealth, ResilientLeases, ResilientThrottle
from .gate import ConnectionGrant, Refusal, Shaper
from .leases import Lease, Leases, MemoryLeases, RedisLeases
from .loader import Origin, ShapingError
from .options import EgressPathConfig, TlsMode
from .redis_client import make_redis_client
from .redis_throttle import RedisThrottle
from .rules import DEFAULT_SHAPING_FILE, Resolved, Rules, ShapingRules, site_name_for
from .spec import ThrottleSpec, parse_throttle_spec
from .throttle import MemoryThrottle, Throttle, ThrottleResult

__all__ = [
    "DEFAULT_SHAPING_FILE",
    "Action",
    "AutomationRule",
    "ConnectionGrant",
    "EgressPathConfig",
    "Lease",
    "Leases",
    "MemoryLeases",
    "MemoryThrottle",
    "Origin",
    "RedisHealth",
    "RedisLeases",
    "RedisThrottle",
    "Refusal",
    "ResilientLeases",
    "ResilientThrottle",
    "Resolved",
    "Rules",
    "Shaper",
    "ShapingError",
    "ShapingRules",
    "Throttle",
    "ThrottleResult",
    "ThrottleSpec",
    "TlsMode",
    "make_redis_client",
    "parse_throttle_spec",
    "site_name_for",
]
