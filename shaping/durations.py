"""Durations as written in shaping files: 30, "60s", "90m", "1h30m", "2 hours", "30 days".

KumoMTA reads these with the ``humantime`` crate, so shaping files in the wild mix short
("90m") and long ("3 hours") spellings; we accept both. A bare number means seconds.
"""

from __future__ import annotations

import re
from typing import Final

_SECONDS: Final = {
    "ms": 0.001,
    "msec": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}
_PART: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*")


def parse_duration(value: object) -> float:
    """Seconds from a number or a duration string; raises ValueError for junk or negatives."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration must not be negative, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f'expected a duration such as "90m", got {type(value).__name__}')
    text = value.strip().lower()
    total, position = 0.0, 0
    for match in _PART.finditer(text):
        if match.start() != position or match[2] not in _SECONDS:
            break
        total += float(match[1]) * _SECONDS[match[2]]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(f'invalid duration {value!r} (use e.g. "60s", "90m", "2 hours")')
    return total


def format_duration(seconds: float) -> str:
    """A short spelling that parse_duration reads back: "90m", "1h30m", "45s", "1.5s"
    (fractions of a second are kept to the millisecond)."""
    if seconds != int(seconds):
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    remaining, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    if remaining or not parts:
        parts.append(f"{remaining}s")
    return "".join(parts)
