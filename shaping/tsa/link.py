"""What the TSA clients share: auth header, backoff, logging once per state change."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Final

import aiohttp

logger = logging.getLogger("shaping.tsa")

REQUEST_TIMEOUT: Final = 10.0  # seconds for one HTTP request or websocket handshake
RETRY_INITIAL: Final = 0.5  # seconds before the first retry; doubles up to RETRY_MAX
RETRY_MAX: Final = 30.0

SessionFactory = Callable[[], aiohttp.ClientSession]
TRANSPORT_ERRORS: Final = (aiohttp.ClientError, TimeoutError, OSError)


def read_token(path: Path) -> str:
    """The bearer token in ``path`` (a mounted Secret), without surrounding whitespace."""
    return path.read_text().strip()


def auth_headers(token: str | None) -> dict[str, str]:
    """``Authorization: Bearer`` when a token is configured."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Backoff:
    """Capped exponential backoff with jitter, so replicas that failed together do not
    retry together."""

    def __init__(self, initial: float = RETRY_INITIAL, maximum: float = RETRY_MAX) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def reset(self) -> None:
        self._next = self.initial

    def delay(self) -> float:
        """The next wait; each call doubles the following one, up to the cap."""
        current = self._next
        self._next = min(self.maximum, current * 2)
        return current * random.uniform(0.5, 1.0)


class StateLog:
    """Logs a component's health once per change instead of once per failure."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.healthy: bool | None = None  # None until the first outcome

    def ok(self, message: str = "reachable") -> None:
        if self.healthy is not True:
            logger.info("%s: %s", self.what, message)
        self.healthy = True

    def failed(self, reason: str) -> None:
        if self.healthy is not False:
            logger.warning("%s: %s; retrying with backoff", self.what, reason)
        self.healthy = False
