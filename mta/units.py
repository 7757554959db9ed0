"""Parsing of durations ("30s", "20m", "1h30m", "7d"), sizes ("10MiB") and "host:port"."""

from __future__ import annotations

import re
from typing import Any, NewType

Duration = NewType("Duration", float)
"""Seconds, parsed from a number or a string such as "20m"."""

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_POWERS = {"": 0, "b": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_duration(value: Any) -> Duration:
    """Seconds from 30, 2.5, "30s", "20m", "1h30m", "7d"; rejects negatives and junk."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value}")
        return Duration(float(value))
    if not isinstance(value, str):
        raise ValueError(f'expected a duration such as "20m", got {type(value).__name__}')
    text = value.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f'invalid duration {value!r} (use e.g. "30s", "20m", "7d")')
    return Duration(sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts))


def parse_size(value: Any) -> int:
    """Bytes from 1024, "10MB" (10**7), "10MiB" (10*2**20), "512k"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value))
    if match is None:
        raise ValueError(f'invalid size {value!r} (use e.g. 1048576, "10MiB", "500MB")')
    unit = (match[2] or "").lower()
    base = 1024 if "i" in unit else 1000
    power = _SIZE_POWERS[unit[:1]]
    return int(float(match[1]) * base**power)


def parse_hostport(text: str, default_port: int | None = None) -> tuple[str, int]:
    """("127.0.0.1", 25) from "127.0.0.1:25", "[::1]:25", "mx.example.com" (with a default)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f'expected "host:port", got {text!r}')
    text = text.strip()
    host, port_text = _split_hostport(text)
    if port_text is None:
        if default_port is None:
            raise ValueError(f'{text!r} has no port (use "host:port")')
        return host, default_port
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ValueError(f"{text!r}: invalid port {port_text!r}")
    return host, int(port_text)


def _split_hostport(text: str) -> tuple[str, str | None]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid address {text!r}")
        return host, rest[1:] if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return text, None  # a bare host, or a bare IPv6 address
