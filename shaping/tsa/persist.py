"""The TSA daemon's state file: a JSON snapshot written atomically (temporary file,
fsync, rename, fsync of the directory) so that a crash leaves the old file or the new
one, never half of one.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import orjson

from .outbox import fsync_directory

logger = logging.getLogger("shaping.tsa")


def save_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (blocking: run it in a thread)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    payload = orjson.dumps(data, option=orjson.OPT_INDENT_2)
    with open(temporary, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)


def load_json(path: Path) -> Any | None:
    """The JSON in ``path``; None when there is no file. A file that cannot be read or
    parsed is moved aside (``<name>.bad``) and logged, and None returned: a TSA that
    forgot its state recovers from the next records, one that does not start does not."""
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        logger.error("TSA: cannot read state file %s (%s); starting empty", path, error)
        return None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        set_aside(path, f"not JSON: {error}")
        return None


def set_aside(path: Path, why: str) -> None:
    """Move an unusable state file to ``<name>.bad`` and log why."""
    aside = path.with_name(path.name + ".bad")
    with contextlib.suppress(OSError):
        os.replace(path, aside)
    logger.error("TSA: state file %s unusable (%s); moved to %s, starting empty", path, why, aside)
