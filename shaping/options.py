"""Egress path options: the settings for one (source, site) path, and their validation.

Names and defaults follow KumoMTA's ``make_egress_path`` so shaping files move over
unchanged. KumoMTA options that this MTA does not implement are accepted with a warning
(:data:`IGNORED_KUMO_OPTIONS`); any other unknown name is an error.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

from .durations import parse_duration
from .spec import ThrottleSpec, parse_count, parse_throttle_spec

TlsMode = Literal[
    "Opportunistic", "OpportunisticInsecure", "Required", "RequiredInsecure", "Disabled"
]
TLS_MODES: Final[tuple[str, ...]] = get_args(TlsMode)
MAX_PORT: Final = 65535


def _no_entries() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclasses.dataclass(frozen=True)
class EgressPathConfig:
    """Effective settings of one egress path (defaults: KumoMTA's ``make_egress_path``).

    Durations are seconds. ``additional_*`` maps are named limits shared by every path
    that names them (KumoMTA's ``additional_connection_limits`` and
    ``additional_message_rate_throttles``; provider limits land there too).
    """

    connection_limit: int = 32
    additional_connection_limits: Mapping[str, int] = dataclasses.field(default_factory=_no_entries)
    max_connection_rate: ThrottleSpec | None = None
    max_message_rate: ThrottleSpec | None = None
    additional_message_rate_throttles: Mapping[str, ThrottleSpec] = dataclasses.field(
        default_factory=_no_entries
    )
    max_deliveries_per_connection: int = 1024
    max_recipients_per_batch: int = 100
    max_ready: int = 1024
    consecutive_connection_failures_before_delay: int = 100
    enable_tls: TlsMode = "Opportunistic"
    opportunistic_tls_reconnect_on_failed_handshake: bool = False  # then retry in plain text
    enable_mta_sts: bool = True
    enable_dane: bool = False
    smtp_port: int = 25
    ehlo_domain: str | None = None
    provider_name: str | None = None
    connect_timeout: float = 60.0
    starttls_timeout: float = 5.0
    auth_timeout: float = 60.0
    ehlo_timeout: float = 300.0
    mail_from_timeout: float = 300.0
    rcpt_to_timeout: float = 300.0
    data_timeout: float = 300.0
    data_dot_timeout: float = 300.0
    rset_timeout: float = 5.0
    idle_timeout: float = 5.0

    def message_throttles(self) -> list[tuple[str | None, ThrottleSpec]]:
        """Every message rate on this path, slowest first; name None is
        ``max_message_rate`` itself. Checking the tightest limit first avoids using up
        a slot of a looser one only to be stopped by the tighter (as KumoMTA orders them)."""
        return list(self._message_throttles)

    def connection_limits(self) -> list[tuple[str | None, int]]:
        """Every connection limit on this path, smallest first (None: ``connection_limit``)."""
        return list(self._connection_limits)

    # Asked before every message and connection: sorted once per (immutable) path config.
    @functools.cached_property
    def _message_throttles(self) -> tuple[tuple[str | None, ThrottleSpec], ...]:
        found: list[tuple[str | None, ThrottleSpec]] = list(
            self.additional_message_rate_throttles.items()
        )
        if self.max_message_rate is not None:
            found.append((None, self.max_message_rate))
        return tuple(sorted(found, key=lambda item: item[1].rate_per_second))

    @functools.cached_property
    def _connection_limits(self) -> tuple[tuple[str | None, int], ...]:
        found: list[tuple[str | None, int]] = [(None, self.connection_limit)]
        found.extend(self.additional_connection_limits.items())
        return tuple(sorted(found, key=lambda item: item[1]))


Parser = Callable[[object], object]


def _integer(value: object, minimum: int) -> int:
    """An integer (or "1,000" / "1_000", as KumoMTA accepts) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected an integer, got {value!r}")
    number = value if isinstance(value, int) else parse_count(value, "integer")
    if number < minimum:
        raise ValueError(f"must be at least {minimum}, got {number}")
    return number


def _int_at_least(minimum: int) -> Parser:
    return lambda value: _integer(value, minimum)


def _port(value: object) -> int:
    port = _integer(value, 1)
    if port > MAX_PORT:
        raise ValueError(f"not a TCP port: {port}")
    return port


def _spec(value: object) -> ThrottleSpec:
    if not isinstance(value, str):
        raise ValueError(f'expected a throttle spec string such as "100/s", got {value!r}')
    return parse_throttle_spec(value)


def _tls(value: object) -> str:
    if value not in TLS_MODES:
        raise ValueError(f"invalid enable_tls {value!r}: expected one of {', '.join(TLS_MODES)}")
    return str(value)


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _timeout(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"a timeout must be positive, got {value!r}")
    return seconds


_TIMEOUTS: Final = (
    "connect_timeout", "starttls_timeout", "auth_timeout", "ehlo_timeout", "mail_from_timeout",
    "rcpt_to_timeout", "data_timeout", "data_dot_timeout", "rset_timeout", "idle_timeout",
)  # fmt: skip
SCALAR_OPTIONS: Final[Mapping[str, Parser]] = MappingProxyType(
    {
        "connection_limit": _int_at_least(0),
        "max_connection_rate": _spec,
        "max_message_rate": _spec,
        "max_deliveries_per_connection": _int_at_least(1),
        "max_recipients_per_batch": _int_at_least(1),
        "max_ready": _int_at_least(1),
        "consecutive_connection_failures_before_delay": _int_at_least(1),
        "enable_tls": _tls,
        "opportunistic_tls_reconnect_on_failed_handshake": _bool,
        "enable_mta_sts": _bool,
        "enable_dane": _bool,
        "smtp_port": _port,
        "ehlo_domain": _text,
        "provider_name": _text,
        **dict.fromkeys(_TIMEOUTS, _timeout),
    }
)
# Options whose value is a table of named entries; files merge them entry by entry.
MAP_OPTIONS: Final[Mapping[str, Parser]] = MappingProxyType(
    {
        "additional_connection_limits": _int_at_least(0),
        "additional_message_rate_throttles": _spec,
    }
)
IGNORED_KUMO_OPTIONS: Final = frozenset(
    {
        "additional_source_selection_rates", "aggressive_connection_opening",
        "allow_smtp_auth_plain_without_tls", "allow_smtp_auth_plain_without_valid_certificate",
        "banner_timeout", "dispatcher_progress_watchdog_timeout", "dispatcher_wakeup_strategy",
        "enable_pipelining", "enable_rset", "ignore_8bit_checks", "ip_lookup_strategy",
        "low_memory_reduction_policy", "maintainer_wakeup_strategy", "max_mx_addresses_per_host",
        "max_mx_plan_size", "no_memory_reduction_policy", "openssl_cipher_list",
        "openssl_cipher_suites", "openssl_options", "prohibited_hosts",
        "provider_source_selection_rate", "reconnect_strategy",
        "refresh_interval", "refresh_strategy", "remember_broken_tls", "rustls_cipher_suites",
        "skip_hosts", "smtp_auth_plain_password", "smtp_auth_plain_username",
        "source_selection_rate", "suspended", "system_shutdown_timeout", "tls_certificate",
        "tls_handshake_timeout", "tls_prefer_openssl", "tls_private_key",
        "try_next_host_on_transport_error", "use_lmtp",
    }
)  # fmt: skip


def is_option(name: str) -> bool:
    return name in SCALAR_OPTIONS or name in MAP_OPTIONS


def parse_option(name: str, value: object) -> object:
    """The parsed value of a scalar option; raises KeyError (unknown) or ValueError."""
    return SCALAR_OPTIONS[name](value)


def parse_map_entry(name: str, value: object) -> object:
    """The parsed value of one entry of a map option (e.g. one named throttle)."""
    return MAP_OPTIONS[name](value)


def map_key(option: str, entry: str) -> str:
    """The flat key of one map entry, as shown in provenance: ``option.entry``."""
    return f"{option}.{entry}"


def build_config(values: Mapping[str, object]) -> EgressPathConfig:
    """An EgressPathConfig from parsed flat values (map entries keyed ``option.entry``)."""
    scalars: dict[str, object] = {}
    maps: dict[str, dict[str, object]] = {name: {} for name in MAP_OPTIONS}
    for key, value in values.items():
        option, dot, entry = key.partition(".")
        if dot and option in MAP_OPTIONS:
            maps[option][entry] = value
        else:
            scalars[key] = value
    frozen = {name: MappingProxyType(entries) for name, entries in maps.items()}
    return EgressPathConfig(**scalars, **frozen)  # type: ignore[arg-type]
