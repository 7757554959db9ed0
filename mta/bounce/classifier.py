"""The bounce classifier: a failure reply to a KumoMTA bounce class, by ordered regex rules."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

from mta.bounce.rules import RuleGroup, Rules, groups_from_mapping
from mta.replies import Reply

UNCATEGORIZED = "Uncategorized"
CACHE_SIZE = 1024  # distinct reply lines remembered; big senders see the same few texts


class BounceClassifier:
    """Map a failure reply to a class name using an ordered rule list (first match wins).

    `rules` is either a `{class: [pattern, ...]}` table (in its order) or the groups of
    `mta.bounce.rules`; patterns are matched case-insensitively against str(reply),
    "<code> <enhanced> <text>".
    """

    def __init__(self, rules: Mapping[str, Sequence[str]] | Rules) -> None:
        groups: Sequence[RuleGroup] = (
            groups_from_mapping(rules) if isinstance(rules, Mapping) else rules
        )
        self.groups: Rules = tuple(groups)
        self._compiled = [
            (group.name, [re.compile(pattern, re.IGNORECASE) for pattern in group.patterns])
            for group in self.groups
        ]
        self._classify_line = lru_cache(maxsize=CACHE_SIZE)(self._match)

    @property
    def classes(self) -> list[str]:
        """The class names in the order they are tried (a class may appear twice)."""
        return [name for name, _ in self._compiled]

    def classify(self, reply: Reply) -> str:
        """The class of the first matching rule; "Uncategorized" for successes or no match."""
        if reply.is_success:
            return UNCATEGORIZED
        return self.classify_line(str(reply))

    def classify_line(self, line: str) -> str:
        """Classify one reply line, "<code> <enhanced> <text>"."""
        # Multi-line replies arrive joined; one line keeps `^` anchored at the code.
        return self._classify_line(" ".join(line.split()))

    def _match(self, line: str) -> str:
        for name, patterns in self._compiled:
            if any(pattern.search(line) for pattern in patterns):
                return name
        return UNCATEGORIZED
