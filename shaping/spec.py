"""Throttle specs such as "100/s", "1_000/h,max_burst=50" or "1,000/hr".

The syntax follows KumoMTA's ``ThrottleSpec``: a limit (digits, optionally grouped with
``_`` or ``,``), a slash and a period unit. KumoMTA accepts ``s|sec|second``,
``m|min|minute``, ``h|hr|hour`` and ``d|day``; we accept the same spellings. The optional
``,max_burst=M`` suffix sets the burst; without it the burst equals the limit, which is
what KumoMTA's in-memory throttle ends up allowing.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Final

SECONDS_PER_UNIT: Final = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
# The spelling str() uses for each period, so that str(parse(x)) parses back to the same spec.
_CANONICAL_UNIT: Final = {1: "s", 60: "m", 3600: "h", 86400: "d"}
_BURST_OPTION: Final = "max_burst"
_COUNT: Final = re.compile(r"^\d+(?:[_,]\d+)*$")


@dataclasses.dataclass(frozen=True, slots=True)
class ThrottleSpec:
    """A GCRA rate: ``limit`` units per ``period_seconds``, at most ``max_burst`` at once."""

    limit: int
    period_seconds: int
    max_burst: int

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"throttle limit must be at least 1, got {self.limit}")
        if self.period_seconds not in _CANONICAL_UNIT:
            raise ValueError(f"throttle period must be 1, 60, 3600 or 86400 s, not {self}")
        if self.max_burst < 1:
            raise ValueError(f"max_burst must be at least 1, got {self.max_burst}")

    @property
    def interval(self) -> float:
        """Seconds between two units at the steady rate (the GCRA emission interval)."""
        return self.period_seconds / self.limit

    @property
    def rate_per_second(self) -> float:
        return self.limit / self.period_seconds

    def key_suffix(self) -> str:
        """``limit:burst:period``: part of every storage key, so a changed rule starts a
        fresh bucket instead of inheriting one computed with other parameters."""
        return f"{self.limit}:{self.max_burst}:{self.period_seconds}"

    def __str__(self) -> str:
        unit = _CANONICAL_UNIT.get(self.period_seconds, f"{self.period_seconds}s")
        text = f"{self.limit}/{unit}"
        if self.max_burst != self.limit:
            text += f",{_BURST_OPTION}={self.max_burst}"
        return text


def parse_count(text: str, what: str = "count") -> int:
    """An integer written as ``1000``, ``1_000`` or ``1,000``."""
    cleaned = text.strip()
    if not _COUNT.match(cleaned):
        raise ValueError(f"invalid {what} {text!r}: expected digits, optionally grouped by _ or ,")
    return int(cleaned.replace("_", "").replace(",", ""))


def parse_throttle_spec(text: str) -> ThrottleSpec:
    """Parse ``"N/unit"`` with an optional ``",max_burst=M"``; raises ValueError."""
    if not isinstance(text, str):
        raise ValueError(f'expected a throttle spec such as "100/s", got {type(text).__name__}')
    try:
        return _parse(text)
    except ValueError as error:
        raise ValueError(f"invalid throttle spec {text!r}: {error}") from None


def _parse(text: str) -> ThrottleSpec:
    rate_text, burst_text = _split_burst(text)
    limit_text, slash, unit_text = rate_text.partition("/")
    if not slash:
        raise ValueError('expected "limit/period", e.g. "100/s"')
    limit = parse_count(limit_text, "limit")
    unit = unit_text.strip().lower()
    if unit not in SECONDS_PER_UNIT:
        raise ValueError(f"unknown period {unit!r} (use {'|'.join(SECONDS_PER_UNIT)})")
    burst = limit if burst_text is None else parse_count(burst_text, _BURST_OPTION)
    return ThrottleSpec(limit, SECONDS_PER_UNIT[unit], burst)


def _split_burst(text: str) -> tuple[str, str | None]:
    """("1,000/h", "50") from "1,000/h,max_burst=50".

    The limit itself may contain commas ("1,000/h"), so the option is found after the
    slash, not by splitting on the first comma.
    """
    slash = text.find("/")
    comma = text.find(",", slash) if slash >= 0 else -1
    if comma < 0:
        return text, None
    option = text[comma + 1 :]
    name, equals, value = option.partition("=")
    if not equals or name.strip() != _BURST_OPTION:
        raise ValueError(f"unknown option {option.strip()!r} (only {_BURST_OPTION}=N)")
    return text[:comma], value
