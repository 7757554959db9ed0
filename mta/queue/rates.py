"""Per scheduled queue message rates (`[[queue.rates]]`, KumoMTA's queue `max_message_rate`).

A leg whose scheduled queue is over its rate is not promoted to a ready queue: it goes back to
its scheduled queue, due when the rate allows, without counting an attempt. The bucket is the
scheduled queue's own (`campaign:tenant@domain`), on the node's throttle: in memory, or shared
by the cluster through Redis. The egress path's own `max_message_rate` applies as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from mta.config import QueueRateConfig
from mta.queue.routes import domain_matches
from shaping.spec import ThrottleSpec, parse_throttle_spec
from shaping.throttle import Throttle

KEY_PREFIX: Final = "mta.sched_q.max_message_rate."


class QueueRates:
    """The first `[[queue.rates]]` entry matching a scheduled queue decides its rate."""

    def __init__(self, rates: Sequence[QueueRateConfig], throttle: Throttle) -> None:
        self._rates = [(rate, parse_throttle_spec(rate.max_message_rate)) for rate in rates]
        self._throttle = throttle
        self._found: dict[str, ThrottleSpec | None] = {}

    def __bool__(self) -> bool:
        return bool(self._rates)

    def spec_for(
        self, queue: str, domain: str, tenant: str | None, campaign: str | None
    ) -> ThrottleSpec | None:
        if queue not in self._found:
            self._found[queue] = next(
                (spec for rate, spec in self._rates if _matches(rate, domain, tenant, campaign)),
                None,
            )
        return self._found[queue]

    async def delay(
        self, queue: str, domain: str, tenant: str | None, campaign: str | None
    ) -> float:
        """0 when a message of `queue` may move on now, else seconds to wait."""
        spec = self.spec_for(queue, domain, tenant, campaign)
        if spec is None:
            return 0.0
        result = await self._throttle.check(KEY_PREFIX + queue, spec)
        return result.retry_after if result.throttled else 0.0


def _matches(rate: QueueRateConfig, domain: str, tenant: str | None, campaign: str | None) -> bool:
    return (
        (rate.domain is None or domain_matches(rate.domain, domain.lower()))
        and (rate.tenant is None or rate.tenant == tenant)
        and (rate.campaign is None or rate.campaign == campaign)
    )
