"""`[http] inject_rate`: per-credential injection limits (abuse prevention), HTTP 429 over it.

Every message an inject request would create counts: one per recipient, as KumoMTA counts.
The budget belongs to the caller's identity (`mta.http.auth.Identity.name`): the Basic user,
the bearer token's name (`bearer` for an unnamed token), or `trusted:<client IP>` for a
trusted-network request without credentials. The GCRA buckets live in process memory on
purpose: injection must never wait on Redis, so the limit is per node.

A refused request consumes nothing and stores nothing; its answer is 429 with `Retry-After`
(whole seconds, at least 1). A request with more recipients than the burst could never pass,
so it is refused without `Retry-After` and told to split the batch.
"""

from __future__ import annotations

import math
from typing import Any, Final

from mta.config import HttpConfig
from mta.http.auth import Identity
from mta.http.errors import HttpError
from shaping.spec import ThrottleSpec, parse_throttle_spec
from shaping.throttle import MemoryThrottle

TOO_MANY_REQUESTS: Final = 429  # RFC 6585 4
KEY_PREFIX: Final = "http-inject"


def retry_after_header(seconds: float) -> str:
    """RFC 9110 10.2.3: a delay in whole seconds; rounded up so an early retry cannot fail
    again, and at least 1."""
    return str(max(1, math.ceil(seconds)))


def recipient_count(body: Any) -> int:
    """The messages `body` would create; 0 when it has no recipient list (the inject service
    refuses such a body with its own message)."""
    if isinstance(body, dict):
        recipients = body.get("recipients")
        if isinstance(recipients, list):
            return len(recipients)
    return 0


class InjectRateLimiter:
    """Admits inject requests against one ThrottleSpec per identity."""

    def __init__(self, spec: ThrottleSpec, throttle: MemoryThrottle | None = None) -> None:
        self.spec = spec
        self._throttle = throttle or MemoryThrottle()

    @classmethod
    def from_config(cls, config: HttpConfig) -> InjectRateLimiter | None:
        """A limiter for `[http] inject_rate`, None when unlimited."""
        if config.inject_rate is None:
            return None
        return cls(parse_throttle_spec(config.inject_rate))

    @staticmethod
    def key(identity: Identity) -> str:
        return f"{KEY_PREFIX}:{identity.name}"

    async def admit(self, identity: Identity, messages: int) -> None:
        """Count `messages` against `identity`'s budget; HttpError 429 when over it."""
        if messages < 1:
            return
        if messages > self.spec.max_burst:
            raise HttpError(TOO_MANY_REQUESTS, self._too_large(messages))
        result = await self._throttle.check(self.key(identity), self.spec, messages)
        if result.throttled:
            retry = retry_after_header(result.retry_after)
            reason = f"inject_rate {self.spec} exceeded for {identity.name}; retry in {retry}s"
            raise HttpError(TOO_MANY_REQUESTS, reason, {"Retry-After": retry})

    def _too_large(self, messages: int) -> str:
        return (
            f"request has {messages} recipients, more than the inject_rate burst of "
            f"{self.spec.max_burst} ({self.spec}): split it into smaller requests"
        )
