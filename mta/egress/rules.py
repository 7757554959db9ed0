"""The node's shaping rules: the built-in file, the node's `[delivery]` settings, the user's
`[shaping] files`, then automation overrides (local or from a TSA), merged in that order.

`[delivery]` acts as a `["default"]` table of its own, so a single node configured the old way
(`[delivery] connection_limit = 50`) keeps working, while any domain or provider table of a
shaping file still overrides it for its destinations.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Final

from mta.config import Config, ConfigError, DeliveryConfig
from shaping.loader import (
    DEFAULT_BLOCK,
    Block,
    Origin,
    Setting,
    ShapingError,
    ShapingFile,
    read_text,
)
from shaping.rules import DEFAULT_SHAPING_FILE, ShapingRules, Source

logger = logging.getLogger(__name__)

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
    """The rules a node starts with; raises ConfigError naming the file, table and key of a
    bad shaping file."""
    try:
        return ShapingRules.load(rule_sources(config))
    except ShapingError as error:
        raise ConfigError(f"shaping: {error}") from None


class NodeRules:
    """The live rules of a node: its files re-read when they change, automation overrides
    layered on top; a layer that does not load leaves the last good rules in place."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self.live = build_rules(config)
        self._overrides = ""
        self._stamps = self._file_stamps()

    @property
    def overrides(self) -> str:
        return self._overrides

    def set_overrides(self, text: str) -> None:
        """Layer `text` (shaping TOML from automation or a TSA) over the node's files."""
        if text != self._overrides:
            self._overrides = text
            self._reload()

    def check_files(self) -> bool:
        """Reload if a shaping file changed since the last look; True if it did."""
        stamps = self._file_stamps()
        if stamps == self._stamps:
            return False
        self._stamps = stamps
        logger.info("shaping files changed: reloading")
        self._reload()
        return True

    async def watch(self) -> None:
        """Check the files every `[shaping] reload_interval` until cancelled."""
        while True:
            await asyncio.sleep(self._config.shaping.reload_interval)
            self.check_files()

    def _reload(self) -> None:
        layers = rule_sources(self._config)
        if self._overrides.strip():
            try:
                layers.append(read_text(OVERRIDES_LAYER, self._overrides))
            except ShapingError as error:
                logger.error("automation overrides not applied: %s", error)
                return
        self.live.reload(layers)

    def _file_stamps(self) -> list[tuple[float, int] | None]:
        stamps: list[tuple[float, int] | None] = []
        for path in self._config.shaping.files:
            try:
                stat = Path(path).stat()
            except OSError:
                stamps.append(None)  # reported by the reload that follows
            else:
                stamps.append((stat.st_mtime, stat.st_size))
        return stamps
