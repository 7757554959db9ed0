"""The node's shaping rules: the built-in file, the node's `[delivery]` settings, the user's
`[shaping] files`, then automation overrides (local or from a TSA), merged in that order.

`[delivery]` acts as a `["default"]` table of its own, so a single node configured the old way
(`[delivery] connection_limit = 50`) keeps working, while any domain or provider table of a
shaping file still overrides it for its destinations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from mta.config import Config, DeliveryConfig
from shaping.loader import DEFAULT_BLOCK, Block, Origin, Setting, ShapingFile, read_text
from shaping.rules import DEFAULT_SHAPING_FILE, ShapingRules, Source

DELIVERY_LAYER: Final = "mta.toml"
OVERRIDES_LAYER: Final = "automation overrides"
# The [delivery] keys that are egress path options of the same name and meaning.
PATH_OPTIONS: Final = (
    "smtp_port", "enable_tls", "connect_timeout", "ehlo_timeout", "mail_from_timeout",
    "rcpt_to_timeout", "data_timeout", "data_dot_timeout", "idle_timeout", "connection_limit",
    "max_deliveries_per_connection", "max_recipients_per_batch", "max_ready",
)  # fmt: skip


def delivery_layer(delivery: DeliveryConfig) -> ShapingFile:
    """`[delivery]` as a shaping layer whose values say they came from mta.toml."""
    origin = Origin(DELIVERY_LAYER, "[delivery]")
    options = {name: Setting(getattr(delivery, name), origin) for name in PATH_OPTIONS}
    return ShapingFile(DELIVERY_LAYER, default=Block(DEFAULT_BLOCK, origin, options))


def rule_sources(config: Config) -> list[Source]:
    """The layers below the overrides, in merge order."""
    sources: list[Source] = []
    if config.shaping.include_default:
        sources.append(DEFAULT_SHAPING_FILE)
    sources.append(delivery_layer(config.delivery))
    sources.extend(Path(path) for path in config.shaping.files)
    return sources


def build_rules(config: Config) -> ShapingRules:
    """The rules a node starts with; raises `shaping.loader.ShapingError` naming the file,
    table and key of a bad file."""
    return ShapingRules.load(rule_sources(config))


def with_overrides(config: Config, rules: ShapingRules, text: str) -> None:
    """Switch `rules` to the node's layers plus `text` (shaping TOML of automation overrides),
    keeping the current rules if `text` does not load (logged by `ShapingRules.reload`)."""
    layers = rule_sources(config)
    if text.strip():
        try:
            layers.append(read_text(OVERRIDES_LAYER, text))
        except ValueError as error:
            rules.last_error = error  # type: ignore[assignment]
            return
    rules.reload(layers)
