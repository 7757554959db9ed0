"""Reading one shaping.toml file into validated blocks that remember where each value
came from (file and table), for merging and for ``mta shaping resolve``.

Layout (KumoMTA's): ``["default"]``; one table per domain (``["gmail.com"]``, with
``mx_rollup``, ``replace_base``, ``[["gmail.com".automation]]`` and
``["gmail.com".sources."ip-1"]``); and ``[provider."name"]`` tables with ``match``,
``provider_connection_limit``, ``provider_max_message_rate``, automation and sources.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Final, TypeVar

from .automation import AutomationRule, RuleError, parse_rule
from .options import IGNORED_KUMO_OPTIONS, MAP_OPTIONS, SCALAR_OPTIONS, Parser, map_key
from .spec import ThrottleSpec, parse_throttle_spec

DEFAULT_BLOCK: Final = "default"
PROVIDER_TABLE: Final = "provider"
MATCH_KINDS: Final = ("MXSuffix", "DomainSuffix", "HostName")
_BLOCK_KEYS: Final = frozenset({"mx_rollup", "replace_base", "automation", "sources"})
_PROVIDER_KEYS: Final = frozenset(
    {"match", "provider_connection_limit", "provider_max_message_rate", "replace_base"}
    | {"automation", "sources"}
)


class ShapingError(ValueError):
    """A bad shaping file; the message names the file, the table and the key."""

    def __init__(self, file: str, table: str | None, key: str | None, message: str) -> None:
        where = file + (f": {table}" if table else "") + (f" {key}" if key else "")
        super().__init__(f"{where}: {message}")
        self.file, self.table, self.key = file, table, key


@dataclasses.dataclass(frozen=True, slots=True)
class Origin:
    """Where a value was set: a file and a table such as ``["gmail.com"]``."""

    file: str
    table: str

    def __str__(self) -> str:
        return f"{self.file} {self.table}"


@dataclasses.dataclass(frozen=True, slots=True)
class Setting:
    value: object
    origin: Origin


Settings = dict[str, Setting]  # flat option key (map entries: "option.entry") -> setting


@dataclasses.dataclass
class Block:
    """One default or domain table (after merging: its definitions across files)."""

    name: str
    origin: Origin = Origin("", "")  # the table's latest definition
    options: Settings = dataclasses.field(default_factory=dict)
    sources: dict[str, Settings] = dataclasses.field(default_factory=dict)
    automation: list[tuple[AutomationRule, Origin]] = dataclasses.field(default_factory=list)
    mx_rollup: bool = True
    replace_base: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderMatch:
    kind: str  # one of MATCH_KINDS
    value: str  # lowercase, without a trailing dot


@dataclasses.dataclass
class ProviderBlock(Block):
    matches: list[ProviderMatch] = dataclasses.field(default_factory=list)
    connection_limit: Setting | None = None
    max_message_rate: Setting | None = None


B = TypeVar("B", bound=Block)


@dataclasses.dataclass
class ShapingFile:
    path: str
    default: Block | None = None
    domains: list[Block] = dataclasses.field(default_factory=list)
    providers: list[ProviderBlock] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)


def quote(name: str) -> str:
    """A TOML basic string, as table names are written: ``"gmail.com"``."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_file(path: str | Path) -> ShapingFile:
    """Parse and validate one file; raises ShapingError."""
    name = str(path)
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode()
    except OSError as error:
        raise ShapingError(name, None, None, f"cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ShapingError(name, None, None, f"not UTF-8: {error}") from None
    return read_text(name, text)


def read_text(name: str, text: str) -> ShapingFile:
    """Parse and validate shaping TOML that did not come from a file (``name`` says where
    it came from, e.g. a TSA's generated overrides); raises ShapingError."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ShapingError(name, None, None, f"invalid TOML: {error}") from None
    return _FileReader(name).read(document)


class _FileReader:
    def __init__(self, path: str) -> None:
        self.file = ShapingFile(path)

    def error(self, table: str | None, key: str | None, message: str) -> ShapingError:
        return ShapingError(self.file.path, table, key, message)

    def read(self, document: Mapping[str, object]) -> ShapingFile:
        for name, body in document.items():
            if name == PROVIDER_TABLE:
                self._providers(body)
                continue
            table = f"[{quote(name)}]"
            if not isinstance(body, dict):
                raise self.error(None, name, 'expected a table such as ["example.com"]')
            block = self._block(Block(name), table, body, _BLOCK_KEYS)
            if name == DEFAULT_BLOCK:
                self.file.default = block
            else:
                self._check_domain_name(name, table)
                self.file.domains.append(block)
        return self.file

    def _providers(self, body: object) -> None:
        if not isinstance(body, dict):
            raise self.error(None, PROVIDER_TABLE, 'expected tables such as [provider."name"]')
        for name, table_body in body.items():
            table = f"[{PROVIDER_TABLE}.{quote(name)}]"
            if not isinstance(table_body, dict):
                raise self.error(table, None, "expected a table")
            block = self._block(ProviderBlock(name), table, table_body, _PROVIDER_KEYS)
            self._provider_fields(block, table, table_body)
            self.file.providers.append(block)

    def _block(
        self, block: B, table: str, body: Mapping[str, object], special: frozenset[str]
    ) -> B:
        origin = Origin(self.file.path, table)
        block.origin = origin
        plain = {k: v for k, v in body.items() if k not in special}
        block.options = self._options(table, plain, origin)
        for flag in ("mx_rollup", "replace_base"):
            if flag in body and flag in special:
                setattr(block, flag, self._flag(table, flag, body[flag]))
        block.sources = self._sources(table, body.get("sources", {}))
        block.automation = self._automation(table, body.get("automation", []))
        return block

    def _flag(self, table: str, key: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.error(table, key, f"expected true or false, got {value!r}")
        return value

    def _options(self, table: str, body: Mapping[str, object], origin: Origin) -> Settings:
        settings: Settings = {}
        for key, value in body.items():
            if key in SCALAR_OPTIONS:
                settings[key] = Setting(self._parse(table, key, SCALAR_OPTIONS[key], value), origin)
            elif key in MAP_OPTIONS:
                settings.update(self._map_option(table, key, value, origin))
            elif key in IGNORED_KUMO_OPTIONS:
                self.file.warnings.append(
                    f"{self.file.path}: {table} {key}: KumoMTA option not implemented; ignored"
                )
            else:
                raise self.error(table, key, self._unknown(value))
        return settings

    def _unknown(self, value: object) -> str:
        if isinstance(value, dict):  # [gmail.com] is the table "com" inside "gmail"
            return 'unknown option (a nested table? Quote domains: ["example.com"])'
        return "unknown option"

    def _parse(self, table: str, key: str, parse: Parser, value: object) -> object:
        try:
            return parse(value)
        except ValueError as error:
            raise self.error(table, key, str(error)) from None

    def _map_option(self, table: str, key: str, value: object, origin: Origin) -> Settings:
        if not isinstance(value, dict):
            raise self.error(table, key, "expected a table of named limits")
        return {
            map_key(key, name): Setting(
                self._parse(table, map_key(key, name), MAP_OPTIONS[key], entry), origin
            )
            for name, entry in value.items()
        }

    def _sources(self, table: str, value: object) -> dict[str, Settings]:
        if not isinstance(value, dict):
            raise self.error(table, "sources", 'expected tables such as [...sources."name"]')
        result: dict[str, Settings] = {}
        for source, body in value.items():
            source_table = f"{table[:-1]}.sources.{quote(source)}]"
            if not isinstance(body, dict):
                raise self.error(source_table, None, "expected a table of options")
            result[source] = self._options(source_table, body, Origin(self.file.path, source_table))
        return result

    def _automation(self, table: str, value: object) -> list[tuple[AutomationRule, Origin]]:
        if not isinstance(value, list):
            raise self.error(table, "automation", "expected [[...automation]] tables")
        rules = []
        for number, body in enumerate(value, start=1):
            rule_table = f"[{table[:-1]}.automation]] #{number}"
            if not isinstance(body, dict):
                raise self.error(rule_table, None, "expected a table")
            try:
                rules.append((parse_rule(body), Origin(self.file.path, rule_table)))
            except RuleError as error:
                raise self.error(rule_table, error.key, str(error)) from None
        return rules

    def _provider_fields(
        self, block: ProviderBlock, table: str, body: Mapping[str, object]
    ) -> None:
        origin = Origin(self.file.path, table)
        block.matches = self._matches(table, body.get("match", []))
        if "provider_connection_limit" in body:
            key = "provider_connection_limit"
            value = self._parse(table, key, MAP_OPTIONS["additional_connection_limits"], body[key])
            block.connection_limit = Setting(value, origin)
        if "provider_max_message_rate" in body:
            key = "provider_max_message_rate"
            value = self._parse(table, key, _spec_only, body[key])
            block.max_message_rate = Setting(value, origin)

    def _matches(self, table: str, value: object) -> list[ProviderMatch]:
        if not isinstance(value, list):
            raise self.error(table, "match", 'expected a list such as [{MXSuffix = ".example"}]')
        found = []
        for item in value:
            if not isinstance(item, dict) or len(item) != 1:
                raise self.error(table, "match", f"expected one-key tables, got {item!r}")
            ((kind, text),) = item.items()
            if kind not in MATCH_KINDS or not isinstance(text, str) or not text.strip("."):
                kinds = ", ".join(MATCH_KINDS)
                raise self.error(table, "match", f"invalid entry {item!r} (kinds: {kinds})")
            found.append(ProviderMatch(kind, text.strip().lower().rstrip(".")))
        return found

    def _check_domain_name(self, name: str, table: str) -> None:
        if "." not in name:
            self.file.warnings.append(
                f"{self.file.path}: {table}: a domain with one label; "
                f'was ["{name}.com"] meant? Unquoted dots make nested tables'
            )


def _spec_only(value: object) -> ThrottleSpec:
    if not isinstance(value, str):
        raise ValueError(f'expected a throttle spec string such as "100/s", got {value!r}')
    return parse_throttle_spec(value)
