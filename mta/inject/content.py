"""What a request's content (builder or raw message) produces for one recipient."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from mta.inject.templates import CompiledParts


@dataclass(frozen=True, slots=True)
class Built:
    """A message before the per-recipient headers are added.

    `head` holds the content's header lines, `body` everything after them: for a raw message
    the blank line and the body, for a built one the top entity's own headers, the blank line
    and the MIME body. `present` names (lowercase) the headers the content already has, so
    To, Date, Message-ID and MIME-Version are added only when missing. `utf8` is true when a
    header carries raw UTF-8 (an internationalized address), which needs SMTPUTF8.
    """

    head: bytes
    body: bytes
    present: frozenset[str]
    utf8: bool = False


class ContentPlan(Protocol):
    """A request's content, compiled once: `build` runs per recipient."""

    @property
    def compiled(self) -> CompiledParts: ...

    def build(self, rendered: Mapping[str, str]) -> Built:
        """Assemble the message from the rendered templates; RecipientError when invalid."""
        ...
