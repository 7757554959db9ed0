"""aiosmtpd's lookup tables, replaced with ours: command line limits, command dispatch."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

MAX_COMMAND_LINE = 512  # RFC 5321 4.5.3.1.4, octets including CRLF
CRLF = b"\r\n"
# The common path `<dot-atom@host>` plus parameters. aiosmtpd parses every path with the email
# package's RFC 5322 header parser (a fifth of the CPU of a relay session); anything this does
# not match (quoted local parts, address literals, `<>`, junk) still goes that way.
SIMPLE_PATH = re.compile(
    r"\s*<((?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)>"
    r"(?:[ \t]+(?P<rest>.*))?\Z",
    re.DOTALL,
)


class CommandLimits(dict[str, int]):
    """aiosmtpd's per-command line limits (compared without CRLF), all fixed at ours."""

    def __missing__(self, key: str) -> int:
        return MAX_COMMAND_LINE - len(CRLF)

    def __setitem__(self, key: str, value: int) -> None:
        pass  # aiosmtpd adds to MAIL's limit on every EHLO; ours does not grow


class Dispatch(dict[str, Any]):
    """aiosmtpd's command table; every lookup, known name or not, gets the session's runner."""

    def __init__(self, methods: dict[str, Any], runner: Callable[[str, Any], Any]) -> None:
        super().__init__(methods)
        self._runner = runner

    def get(self, key: str, default: Any = None) -> Any:
        return self._runner(key, super().get(key))


_DISPATCH_NAMES: dict[tuple[str, tuple[str, ...]], list[str]] = {}
SESSION_PREFIXES = ("smtp_", "auth_")  # what aiosmtpd looks up on a session
HANDLER_PREFIXES = ("handle_", "auth_")  # and on its handler


def dispatch_names(cls: type[Any], prefixes: tuple[str, ...] = SESSION_PREFIXES) -> list[str]:
    """The names aiosmtpd looks up on an object of `cls` (its SMTP verbs and AUTH mechanisms
    on a session, its hooks on a handler), for a `__dir__` that lists only those: aiosmtpd
    scans `dir()` of both (with inspect.getmembers) for every connection."""
    key = (f"{cls.__module__}.{cls.__qualname__}", prefixes)
    names = _DISPATCH_NAMES.get(key)
    if names is None:
        names = [name for name in dir(cls) if name.startswith(prefixes)]
        _DISPATCH_NAMES[key] = names
    return names
