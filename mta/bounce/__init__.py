"""Bounce classification: KumoMTA's classes from rules files layered over a shipped default.

`load_classifier(files)` builds the node's classifier (`[bounce] rules_files`);
`classify_bounce(reply)` classifies with the shipped rules alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from mta.bounce.classifier import UNCATEGORIZED, BounceClassifier
from mta.bounce.rules import RuleGroup, Rules, RulesError, default_rules, load_rules
from mta.replies import Reply

__all__ = [
    "DEFAULT_BOUNCE_RULES",
    "UNCATEGORIZED",
    "BounceClassifier",
    "RuleGroup",
    "Rules",
    "RulesError",
    "classify_bounce",
    "default_rules",
    "load_classifier",
    "load_rules",
]

_DEFAULT_GROUPS = default_rules()
# The shipped rules as a read-only table (for callers of the former `mta.logs` constant).
DEFAULT_BOUNCE_RULES: Mapping[str, Sequence[str]] = {
    group.name: group.patterns for group in _DEFAULT_GROUPS
}
_DEFAULT_CLASSIFIER = BounceClassifier(_DEFAULT_GROUPS)


def load_classifier(files: Iterable[Path] = ()) -> BounceClassifier:
    """A classifier from the shipped rules with `files` layered over them; RulesError."""
    files = tuple(files)
    if not files:
        return _DEFAULT_CLASSIFIER
    return BounceClassifier(load_rules(files, _DEFAULT_GROUPS))


def classify_bounce(reply: Reply) -> str:
    """Classify with the shipped rules alone."""
    return _DEFAULT_CLASSIFIER.classify(reply)
