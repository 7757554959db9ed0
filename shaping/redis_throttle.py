"""GCRA throttles shared by every node through Redis.

When the server has ``CL.THROTTLE`` (the redis-cell module, or Dragonfly) we use it;
otherwise a Lua script runs the same algorithm as :func:`shaping.gcra.gcra_step` with
``now`` taken from Redis ``TIME``, so every node uses one clock.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from .gcra import GcraDecision, to_micros
from .spec import ThrottleSpec
from .throttle import ThrottleResult, check_quantity, result_of, storage_key

logger = logging.getLogger("shaping")

DEFAULT_REDIS_TIMEOUT: Final = 0.5  # seconds; a shaping decision must never stall delivery
CL_THROTTLE: Final = "CL.THROTTLE"

# The same steps as shaping.gcra.gcra_step, in whole microseconds (exact in Lua's doubles).
# KEYS[1] bucket; ARGV: limit, period (s), burst, quantity, [now (µs)] -> {throttled,
# retry_after, remaining, reset_after} (µs). The optional `now` exists for the equivalence
# tests only: production calls leave it out and the script reads Redis TIME, one clock for
# every node.
GCRA_LUA: Final = """
local now = tonumber(ARGV[5])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local limit = tonumber(ARGV[1])
local interval = math.max(1, math.floor(tonumber(ARGV[2]) * 1000000 / limit + 0.5))
local burst = tonumber(ARGV[3])
local quantity = tonumber(ARGV[4])
local function units(slack)
  return math.min(burst, math.max(0, math.floor(slack / interval)))
end
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + interval * quantity
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {1, allow_at - now, units(now - (tat - interval * burst)), tat - now}
end
local ttl = math.max(1, math.ceil((new_tat - now) / 1000000))
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'EX', ttl)
return {0, 0, units(now - allow_at), new_tat - now}
"""


class RedisThrottle:
    """A :class:`~shaping.throttle.Throttle` backed by Redis.

    ``client`` is a ``redis.asyncio.Redis``. Each call is bounded by ``timeout`` seconds
    and raises ``TimeoutError`` or a ``redis`` exception on trouble; wrap the throttle in
    :class:`shaping.fallback.ResilientThrottle` to keep deciding when Redis is away.
    ``prefix`` is prepended to every key (default none, as KumoMTA).
    """

    def __init__(
        self, client: Redis, *, timeout: float = DEFAULT_REDIS_TIMEOUT, prefix: str = ""
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._prefix = prefix
        self._script = client.register_script(GCRA_LUA)
        self._has_cell: bool | None = None  # None: not known yet; found out on first use

    @property
    def uses_cl_throttle(self) -> bool | None:
        """Whether CL.THROTTLE is used (None until the first check detected it)."""
        return self._has_cell

    async def check(self, key: str, spec: ThrottleSpec, quantity: int = 1) -> ThrottleResult:
        check_quantity(quantity)
        name = self._prefix + storage_key(key, spec)
        async with asyncio.timeout(self._timeout):
            if self._has_cell is False:
                return await self._lua(name, spec, quantity, None)
            return await self._cell(name, spec, quantity)

    async def check_at(
        self, key: str, spec: ThrottleSpec, quantity: int, now: float
    ) -> ThrottleResult:
        """Run the Lua script with a given ``now`` instead of Redis TIME. For tests only:
        it lets them drive this path and :class:`MemoryThrottle` with the same clock."""
        check_quantity(quantity)
        async with asyncio.timeout(self._timeout):
            return await self._lua(self._prefix + storage_key(key, spec), spec, quantity, now)

    def _detected(self, has_cell: bool) -> None:
        if self._has_cell is not has_cell:
            how = CL_THROTTLE if has_cell else "the GCRA Lua script"
            logger.info("Redis throttles use %s", how)
        self._has_cell = has_cell

    async def _lua(
        self, name: str, spec: ThrottleSpec, quantity: int, now: float | None
    ) -> ThrottleResult:
        args = [spec.limit, spec.period_seconds, spec.max_burst, quantity]
        if now is not None:
            args.append(to_micros(now))
        throttled, retry_after, remaining, reset_after = await self._script(keys=[name], args=args)
        decision = GcraDecision(not throttled, None, retry_after, remaining, reset_after)
        return result_of(decision)

    async def _cell(self, name: str, spec: ThrottleSpec, quantity: int) -> ThrottleResult:
        # redis-cell admits max_burst + 1 units at once; pass burst - 1 so the burst means
        # the same thing on every path (KumoMTA's memory throttle makes the same correction).
        try:
            reply = await self._client.execute_command(  # type: ignore[no-untyped-call]
                CL_THROTTLE, name, spec.max_burst - 1, spec.limit, spec.period_seconds, quantity
            )
        except ResponseError as error:
            # Detection by trying: no side effect when the command does not exist, and it
            # also notices a server restarted without the module.
            if "unknown command" not in str(error).lower():
                raise
            self._detected(False)
            return await self._lua(name, spec, quantity, None)
        self._detected(True)
        throttled, _limit, remaining, retry_after, reset_after = (int(v) for v in reply)
        return ThrottleResult(
            bool(throttled), float(max(retry_after, 0)), remaining, float(max(reset_after, 0))
        )
