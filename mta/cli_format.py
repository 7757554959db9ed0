"""Plain-text rendering of the node's JSON answers: aligned tables and key/value blocks.

No third-party table library: a few dozen lines give aligned columns, and the CLI stays
importable from a bare Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MISSING = "-"
GAP = "  "

Column = tuple[str, str]  # (header, key in each entry)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Columns aligned on the widest cell; numbers right-aligned, everything else left."""
    typed = [list(row) for row in rows]
    cells = [[cell_text(cell) for cell in row] for row in typed]
    numeric = [_numeric([row[i] for row in typed]) for i in range(len(headers))]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    lines = [_line(headers, widths, numeric)]
    lines.extend(_line(row, widths, numeric) for row in cells)
    return "\n".join(lines)


def _numeric(column: Sequence[Any]) -> bool:
    """A column of numbers (some perhaps missing) reads best right-aligned."""
    return any(map(_is_number, column)) and all(_is_number(v) or v is None for v in column)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _line(cells: Sequence[str], widths: Sequence[int], right: Sequence[bool]) -> str:
    parts = [
        cell.rjust(width) if align else cell.ljust(width)
        for cell, width, align in zip(cells, widths, right, strict=True)
    ]
    return GAP.join(parts).rstrip()


def cell_text(value: Any) -> str:
    """How one value reads in a table: None as "-", lists joined by commas."""
    if value is None or value == "" or value == []:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(cell_text(item) for item in value)
    if isinstance(value, float):
        return f"{value:g}"
    return " ".join(str(value).split())


def span(seconds: float) -> str:
    """A short human duration: "45s", "12m", "3h05m", "2d04h"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m" if not secs or minutes >= 10 else f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def parse_time(value: Any) -> dt.datetime | None:
    """An aware datetime from an RFC 3339 string, epoch seconds or a datetime; else None."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    if _is_number(value):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def relative(value: Any, now: dt.datetime) -> str:
    """ "in 5m", "12m ago" or "now" for a timestamp; the value itself if it is not one."""
    when = parse_time(value)
    if when is None:
        return cell_text(value)
    delta = (when - now).total_seconds()
    if abs(delta) < 1:
        return "now"
    return f"in {span(delta)}" if delta > 0 else f"{span(-delta)} ago"


def remaining(value: Any) -> str:
    """A rule's remaining time: seconds humanized; KumoMTA's "4m 50s 207ms ..." kept short."""
    if _is_number(value):
        return span(value)
    if isinstance(value, str):
        # Humantime strings carry sub-second parts nobody reads in a table.
        parts = [p for p in value.split() if not p.endswith(("ms", "us", "ns"))]
        return " ".join(parts) or value
    return cell_text(value)


def records(
    entries: Sequence[Mapping[str, Any]], columns: Sequence[Column], keep: Sequence[str]
) -> str:
    """A table of entries; optional columns (not in `keep`) vanish when empty in every row."""
    shown = [
        (header, key)
        for header, key in columns
        if key in keep or any(cell_text(entry.get(key)) != MISSING for entry in entries)
    ]
    rows = [[entry.get(key) for _, key in shown] for entry in entries]
    return table([header for header, _ in shown], rows)


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    """`key  value` lines with the values aligned."""
    items = [(key, cell_text(value)) for key, value in pairs]
    width = max((len(key) for key, _ in items), default=0)
    return "\n".join(f"{key.ljust(width)}{GAP}{value}".rstrip() for key, value in items)
