"""Automation rules (``[["scope".automation]]``): parsed and validated, not yet run.

The format is KumoMTA's: ``regex`` is one pattern or a list; ``action`` is one action or
a list, each a bare name (``"Suspend"``) or a one-key table (``{SetConfig = {name, value}}``);
``trigger`` is ``"Immediate"`` (the default) or ``{Threshold = "N/period"}``; ``duration``
is required; ``match_internal`` (default false) lets a rule see this MTA's own
synthesized responses.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from .durations import parse_duration
from .options import MAP_OPTIONS, SCALAR_OPTIONS, parse_map_entry, parse_option
from .spec import ThrottleSpec, parse_throttle_spec

PLAIN_ACTIONS: Final = frozenset(
    {"Suspend", "SuspendTenant", "SuspendCampaign", "Bounce", "BounceTenant", "BounceCampaign"}
)
CONFIG_ACTIONS: Final = frozenset({"SetConfig", "SetDomainConfig"})
RULE_KEYS: Final = frozenset({"regex", "action", "trigger", "duration", "match_internal"})
IMMEDIATE: Final = "Immediate"
THRESHOLD: Final = "Threshold"
T = TypeVar("T")


class RuleError(ValueError):
    """A bad rule; ``key`` names the offending field."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclasses.dataclass(frozen=True, slots=True)
class Action:
    """``kind`` is one of PLAIN_ACTIONS or CONFIG_ACTIONS; config actions carry the
    option ``name`` and its parsed ``value``."""

    kind: str
    name: str | None = None
    value: object = None


@dataclasses.dataclass(frozen=True)
class AutomationRule:
    """A rule; ``threshold`` None means trigger on the first match."""

    regex: tuple[re.Pattern[str], ...]
    actions: tuple[Action, ...]
    duration: float
    threshold: ThrottleSpec | None = None
    match_internal: bool = False

    def matches(self, response: str, *, internal: bool = False) -> bool:
        """Whether a response text (one line) triggers this rule."""
        if internal and not self.match_internal:
            return False
        return any(pattern.search(response) for pattern in self.regex)


def parse_rule(table: Mapping[str, object]) -> AutomationRule:
    """One automation table; raises RuleError naming the bad key."""
    unknown = sorted(set(table) - RULE_KEYS)
    if unknown:
        expected = ", ".join(sorted(RULE_KEYS))
        raise RuleError(unknown[0], f"unknown automation key (expected {expected})")
    for required in ("regex", "action", "duration"):
        if required not in table:
            raise RuleError(required, "missing (regex, action and duration are required)")
    match_internal = table.get("match_internal", False)
    if not isinstance(match_internal, bool):
        raise RuleError("match_internal", f"expected true or false, got {match_internal!r}")
    return AutomationRule(
        regex=_field("regex", _patterns, table["regex"]),
        actions=_field("action", _actions, table["action"]),
        duration=_field("duration", _duration, table["duration"]),
        threshold=_field("trigger", _trigger, table.get("trigger", IMMEDIATE)),
        match_internal=match_internal,
    )


def _field(key: str, parse: Callable[[object], T], value: object) -> T:
    try:
        return parse(value)
    except (ValueError, TypeError) as error:
        raise RuleError(key, str(error)) from None


def _patterns(value: object) -> tuple[re.Pattern[str], ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise ValueError("expected a regular expression string or a non-empty list of them")
    compiled = []
    for text in items:
        try:
            compiled.append(re.compile(text))
        except re.error as error:
            raise ValueError(f"invalid regular expression {text!r}: {error}") from None
    return tuple(compiled)


def _actions(value: object) -> tuple[Action, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("expected at least one action")
    return tuple(_action(item) for item in items)


def _action(value: object) -> Action:
    if isinstance(value, str):
        if value in PLAIN_ACTIONS:
            return Action(value)
        if value in CONFIG_ACTIONS:
            raise ValueError(f"{value} needs a table: {{{value} = {{name = ..., value = ...}}}}")
        raise ValueError(f"unknown action {value!r} (expected one of {_ACTION_NAMES})")
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"expected an action name or a one-key table, got {value!r}")
    ((kind, body),) = value.items()
    if kind not in CONFIG_ACTIONS:
        raise ValueError(f"unknown action {kind!r} (expected one of {_ACTION_NAMES})")
    return _config_action(kind, body)


def _config_action(kind: str, body: object) -> Action:
    if not isinstance(body, dict) or set(body) != {"name", "value"}:
        raise ValueError(f"{kind} takes a table with exactly the keys name and value")
    name, value = body["name"], body["value"]
    if name in SCALAR_OPTIONS:
        return Action(kind, name, _option_value(name, value))
    if name in MAP_OPTIONS and isinstance(value, dict):
        return Action(kind, name, {k: parse_map_entry(name, v) for k, v in value.items()})
    raise ValueError(f"{kind}: unknown option {name!r}")


def _option_value(name: str, value: object) -> object:
    try:
        return parse_option(name, value)
    except ValueError as error:
        raise ValueError(f"invalid value for {name}: {error}") from None


def _duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


def _trigger(value: object) -> ThrottleSpec | None:
    if value == IMMEDIATE:
        return None
    if isinstance(value, dict) and set(value) == {THRESHOLD}:
        return parse_throttle_spec(value[THRESHOLD])
    raise ValueError(f'expected "{IMMEDIATE}" or {{{THRESHOLD} = "N/period"}}, got {value!r}')


_ACTION_NAMES: Final = ", ".join(sorted(PLAIN_ACTIONS | CONFIG_ACTIONS))
