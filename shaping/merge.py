"""Merging shaping files, later over earlier (pure: no I/O).

Each table merges with its earlier definitions: options override one by one (map entries
too), source tables merge per source, automation rules and provider ``match`` entries
accumulate. ``replace_base = true`` in a later definition drops the earlier ones.
A domain table keyed with ``mx_rollup = true`` (the default) and one with ``false`` are
separate tables, as in KumoMTA (one applies to the site, the other to the domain only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeVar

from .loader import Block, ProviderBlock, ShapingFile

B = TypeVar("B", bound=Block)


@dataclasses.dataclass
class Merged:
    default: Block | None = None
    sites: dict[str, Block] = dataclasses.field(default_factory=dict)
    domains: dict[str, Block] = dataclasses.field(default_factory=dict)
    providers: dict[str, ProviderBlock] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)


def merge_files(files: Sequence[ShapingFile]) -> Merged:
    merged = Merged()
    for file in files:
        if file.default is not None:
            merged.default = _merged(merged.default, file.default)
        for block in file.domains:
            table = merged.sites if block.mx_rollup else merged.domains
            name = _domain_key(block.name)
            table[name] = _merged(table.get(name), block)
        for provider in file.providers:
            merged.providers[provider.name] = _merged(merged.providers.get(provider.name), provider)
        merged.warnings.extend(file.warnings)
    return merged


def _domain_key(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _merged(earlier: B | None, later: B) -> B:
    """``later`` merged over ``earlier``; never mutates either."""
    if earlier is None or later.replace_base:
        return _copy(later)
    result = _copy(earlier)
    result.origin = later.origin
    result.options.update(later.options)
    for source, settings in later.sources.items():
        result.sources.setdefault(source, {}).update(settings)
    result.automation.extend(later.automation)
    if isinstance(result, ProviderBlock) and isinstance(later, ProviderBlock):
        _merge_provider(result, later)
    return result


def _merge_provider(result: ProviderBlock, later: ProviderBlock) -> None:
    result.matches.extend(m for m in later.matches if m not in result.matches)
    if later.connection_limit is not None:
        result.connection_limit = later.connection_limit
    if later.max_message_rate is not None:
        result.max_message_rate = later.max_message_rate


def _copy(block: B) -> B:
    copied = dataclasses.replace(
        block,
        options=dict(block.options),
        sources={source: dict(settings) for source, settings in block.sources.items()},
        automation=list(block.automation),
    )
    if isinstance(copied, ProviderBlock) and isinstance(block, ProviderBlock):
        copied.matches = list(block.matches)
    return copied
