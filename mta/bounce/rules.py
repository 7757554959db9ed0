"""Bounce classification rules files: KumoMTA's layout, layered over the shipped default.

A rules file is TOML::

    mode = "extend"          # optional: "extend" (default), "first" or "replace"
    [rules]
    InvalidRecipient = ['^550 .*\\bno such mailbox here\\b']
    MyClass = ['^5\\d\\d .*\\bexample wording\\b']

The rules form an ordered list of groups (class name, patterns); a reply gets the class of the
first group with a matching pattern. Files are applied in order over the shipped default:

- `extend`: a class already present gets the file's patterns after its own (same place in the
  order); a new class is added after all the others. Earlier rules win where both match.
- `first`: the file's groups are tried before every earlier rule (KumoMTA's "overrides first"),
  so the file decides whenever one of its patterns matches.
- `replace`: the file's groups replace everything before it (the shipped rules included).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

Mode = Literal["extend", "first", "replace"]
MODES: tuple[str, ...] = get_args(Mode)
DEFAULT_RULES_RESOURCE = "default_rules.toml"
_CLASS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """One class and its patterns (regular expression sources), in order."""

    name: str
    patterns: tuple[str, ...]


Rules = tuple[RuleGroup, ...]


def groups_from_mapping(rules: Mapping[str, Sequence[str]]) -> Rules:
    """Groups from a `{class: [pattern, ...]}` table, in the table's order."""
    return tuple(RuleGroup(name, tuple(patterns)) for name, patterns in rules.items())


def default_rules() -> Rules:
    """The rules shipped in `mta/bounce/default_rules.toml`."""
    source = resources.files(__package__).joinpath(DEFAULT_RULES_RESOURCE)
    _mode, groups = parse_rules(source.read_text(encoding="utf-8"), DEFAULT_RULES_RESOURCE)
    return groups


def load_rules(files: Iterable[Path], base: Rules | None = None) -> Rules:
    """`base` (default: the shipped rules) with each file applied in order; RulesError."""
    rules = default_rules() if base is None else base
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RulesError(f"{path}: cannot read the bounce rules file: {exc}") from None
        mode, groups = parse_rules(text, str(path))
        rules = layer(rules, groups, mode)
    return rules


def parse_rules(text: str, where: str) -> tuple[Mode, Rules]:
    """The mode and groups of one rules file; RulesError naming `where` and the key."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{where}: invalid TOML: {exc}") from None
    unknown = sorted(set(document) - {"mode", "rules"})
    if unknown:
        raise RulesError(f"{where}: {unknown[0]}: unknown key (expected mode, rules)")
    mode = document.get("mode", "extend")
    if mode not in MODES:
        raise RulesError(f"{where}: mode: {mode!r} is not one of {', '.join(MODES)}")
    table = document.get("rules", {})
    if not isinstance(table, dict):
        raise RulesError(f"{where}: rules: expected a table of class = [patterns]")
    return mode, tuple(_group(name, patterns, where) for name, patterns in table.items())


def _group(name: str, patterns: Any, where: str) -> RuleGroup:
    if not _CLASS_NAME.match(name):
        raise RulesError(f"{where}: rules.{name}: a class name is letters, digits and '_'")
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise RulesError(f"{where}: rules.{name}: expected a list of regular expressions")
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise RulesError(f"{where}: rules.{name}[{i}]: invalid regex: {exc}") from None
    return RuleGroup(name, tuple(patterns))


def layer(rules: Rules, groups: Rules, mode: Mode) -> Rules:
    """`groups` applied over `rules` as `mode` says (see the module docstring)."""
    if mode == "replace":
        return groups
    if mode == "first":
        return groups + rules
    merged = list(rules)
    for group in groups:
        at = next((i for i, old in enumerate(merged) if old.name == group.name), None)
        if at is None:
            merged.append(group)
        else:
            merged[at] = RuleGroup(group.name, merged[at].patterns + group.patterns)
    return tuple(merged)
