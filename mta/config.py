"""The node's configuration: a tree of frozen dataclasses loaded from TOML plus environment.

Every key can be overridden from the environment: `MTA_SMTP__LISTEN="127.0.0.1:2525"` sets
`[smtp] listen`. Values in the environment are read as TOML values when they parse as one
(`MTA_ROUTES='[{domains=["*"], relay="127.0.0.1:2526"}]'`), else as plain strings; a plain
string for a list key is split on commas. Unknown keys and bad values are rejected with the
key's path and the reason.

Reserved: the `MTA_*` variables the programs read for themselves are never overrides, so an
operator who exports `MTA_PASSWORD` for `mta queue` can still run `mta serve`: `MTA_CONFIG`,
`MTA_ENDPOINT`, `MTA_PASSWORD`, `MTA_LOG_LEVEL`, `MTA_TSA_CONFIG` (`RESERVED_ENV`), and every
name starting with `MTA_TEST_` (the test suite's switches).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_args, get_origin, get_type_hints

from mta.logs import RecordType
from mta.units import Duration, parse_duration, parse_hostport, parse_size
from shaping.spec import parse_throttle_spec

ENV_PREFIX = "MTA_"
ENV_CONFIG = "MTA_CONFIG"  # the config file (serve, check-config, log, shaping, spool drain)
ENV_ENDPOINT = "MTA_ENDPOINT"  # operator commands: the node's HTTP API
ENV_PASSWORD = "MTA_PASSWORD"  # operator commands: the password of --user
ENV_LOG_LEVEL = "MTA_LOG_LEVEL"  # every command: the Python logging level
ENV_TSA_CONFIG = "MTA_TSA_CONFIG"  # `mta tsa`: the daemon's own config file
RESERVED_ENV = frozenset({ENV_CONFIG, ENV_ENDPOINT, ENV_PASSWORD, ENV_LOG_LEVEL, ENV_TSA_CONFIG})
RESERVED_ENV_PREFIXES = ("MTA_TEST_",)
DEFAULT_SMTP_LISTEN = ("0.0.0.0:2525",)
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")
DEFAULT_HTTP_LISTEN = ("0.0.0.0:8000",)
TRUSTED_NETWORKS = ("127.0.0.1/32", "::1/128")  # KumoMTA's default trusted hosts
TlsMode = Literal[
    "Opportunistic", "OpportunisticInsecure", "Required", "RequiredInsecure", "Disabled"
]


class ConfigError(ValueError):
    """A configuration problem; the message names the key path and the reason."""


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    name: str = dataclasses.field(default_factory=socket.gethostname)
    hostname: str = dataclasses.field(default_factory=socket.getfqdn)
    drain_timeout: Duration = Duration(30.0)
    # Scale-down (mta.drain): at SIGTERM, hand every queued message to this peer's
    # /api/internal/accept/v1 ("http://mta-0.mta-headless:8000"), as an admin user of it.
    drain_to: str | None = None
    drain_to_timeout: Duration = Duration(60.0)  # what is not handed over by then stays
    drain_user: str | None = None  # HTTP Basic user in the peer's [http] admin_users
    drain_password_file: Path | None = None
    drain_token_file: Path | None = None  # or a Bearer token of such a user
    drain_concurrency: int = 8  # messages handed over at once


@dataclasses.dataclass(frozen=True)
class SpoolConfig:
    path: Path = Path("var/spool")
    min_free_bytes: int = 100 * 1024 * 1024
    fsync: bool = True


@dataclasses.dataclass(frozen=True)
class SmtpConfig:
    listen: tuple[str, ...] = DEFAULT_SMTP_LISTEN
    relay_networks: tuple[str, ...] = LOOPBACK_NETWORKS
    max_message_bytes: int = 20 * 1024 * 1024
    max_recipients: int = 100
    max_connections: int = 1000
    max_connections_per_ip: int = 100
    idle_timeout: Duration = Duration(300.0)
    data_timeout: Duration = Duration(600.0)
    bare_line_endings: Literal["reject", "normalize"] = "reject"
    smtputf8: bool = True
    max_errors: int = 10
    auth_rate: str | None = None  # messages per authenticated user ("100/m"); 451 4.7.1 over it
    ip_rate: str | None = None  # messages per client IP of unauthenticated clients; 451 4.7.1
    tls_cert_file: Path | None = None  # PEM chain for STARTTLS / implicit TLS; reloaded on change
    tls_key_file: Path | None = None
    implicit_tls_listen: tuple[str, ...] = ()  # "0.0.0.0:465": TLS from the first byte
    auth_users_file: Path | None = None  # SMTP AUTH users, same formats as [http] users_file
    auth_users_dir: Path | None = None  # one file per user (a mounted Secret)
    auth_max_failures: int = 5  # failed AUTH attempts per client IP before 421 4.7.0
    auth_failure_window: Duration = Duration(600.0)  # the failure budget refills over this
    auth_failure_delay: Duration = Duration(1.0)  # delay before the n-th failure reply: n times
    max_data_in_flight_bytes: int = 256 * 1024 * 1024  # all sessions; new DATA: 452 4.3.1
    proxy_protocol_listen: tuple[str, ...] = ()  # listeners that expect a PROXY v1/v2 header
    proxy_networks: tuple[str, ...] = ()  # the only peers allowed to send one
    proxy_protocol_timeout: Duration = Duration(10.0)
    sender_policy_file: Path | None = None  # "user: addr@x, @domain" lines
    sender_policy_default: Literal["allow", "deny"] = "allow"  # users without an entry


@dataclasses.dataclass(frozen=True)
class DnsConfig:
    nameservers: tuple[str, ...] = ()
    timeout: Duration = Duration(5.0)
    min_ttl: Duration = Duration(30.0)
    max_ttl: Duration = Duration(3600.0)


@dataclasses.dataclass(frozen=True)
class DeliveryConfig:
    smtp_port: int = 25
    enable_tls: TlsMode = "Opportunistic"
    connect_timeout: Duration = Duration(60.0)
    ehlo_timeout: Duration = Duration(300.0)
    mail_from_timeout: Duration = Duration(300.0)
    rcpt_to_timeout: Duration = Duration(300.0)
    data_timeout: Duration = Duration(300.0)
    data_dot_timeout: Duration = Duration(600.0)  # RFC 5321 4.5.3.2.6
    idle_timeout: Duration = Duration(10.0)
    connection_limit: int = 10
    max_deliveries_per_connection: int = 100
    max_recipients_per_batch: int = 100
    max_ready: int = 1024
    tls_ca_file: Path | None = None  # extra CAs for outbound verification (plus the system's)
    allowed_private_networks: tuple[str, ...] = ()  # CIDRs MX/literal destinations may be in
    mta_sts_port: int = 443  # the policy host's HTTPS port (a testing knob; RFC 8461 says 443)


@dataclasses.dataclass(frozen=True)
class QueueRateConfig:
    """`[[queue.rates]]`: a rate for each scheduled queue matching every given part."""

    max_message_rate: str = ""  # required: a throttle spec such as "1000/h"
    domain: str | None = None  # "example.com", "*.example.com" or "*"
    tenant: str | None = None
    campaign: str | None = None


@dataclasses.dataclass(frozen=True)
class QueueConfig:
    retry_interval: Duration = Duration(20 * 60.0)
    max_retry_interval: Duration = Duration(8 * 3600.0)
    max_age: Duration = Duration(7 * 86400.0)
    jitter: float = 0.1
    rates: tuple[QueueRateConfig, ...] = ()  # first match wins


@dataclasses.dataclass(frozen=True)
class RouteAuthConfig:
    """`[routes.auth]`: SASL PLAIN/LOGIN credentials for a relay (sent under TLS only)."""

    username: str = ""
    password_file: Path | None = None  # re-read when it changes (a mounted Secret)
    password_env: str | None = None  # or the name of an environment variable


RouteTls = Literal["starttls", "implicit", "none"]
RouteMapFormat = Literal["postfix-regex", "postfix-hash-source"]


@dataclasses.dataclass(frozen=True)
class RouteConfig:
    """`[[routes]]`: which recipients (all given criteria must match) go where; first match
    wins. Exactly one destination: `mx` (the default), `relay`, `lmtp`, `discard` or
    `transport_file` (see mta.routing). An egress `pool`/`source` key may join these."""

    domains: tuple[str, ...] = ("*",)  # "example.com", "*.example.com", "*"
    addresses: tuple[str, ...] = ()  # full recipient addresses (case-insensitive)
    regex: str | None = None  # searched in the full recipient address
    tenant: str | None = None
    mx: bool = False
    relay: tuple[str, ...] = ()  # "host:port" smart hosts, tried in order; a string is one
    # relay: "starttls" (required, verified unless tls_verify = false), "implicit" (TLS from
    # the first byte, port 465) or "none"; unset: "starttls" with `auth`, else the egress
    # path's `enable_tls` (opportunistic by default, as before routes had `tls`).
    tls: RouteTls | None = None
    tls_verify: bool = True  # relay: check the relay's certificate and name
    auth: RouteAuthConfig | None = None
    lmtp: str | None = None  # "host:port" or a unix socket path (RFC 2033)
    discard: bool = False  # accept and drop, logged (KumoMTA's `null` queue)
    transport_file: Path | None = None  # a Postfix transport map (Mailman's postfix_lmtp)
    format: RouteMapFormat = "postfix-hash-source"
    pool: str | None = None  # mx and relay routes: send from this `[egress.pools]` pool

    def __post_init__(self) -> None:
        if isinstance(self.relay, str):  # `relay = "host:port"` (and older callers)
            object.__setattr__(self, "relay", (self.relay,))


@dataclasses.dataclass(frozen=True)
class EgressSourceConfig:
    """`[egress.sources."name"]`: where a connection comes from (see mta.egress.sources)."""

    source_address: str | None = None  # local IPv4/IPv6 address to bind (to reach the proxy)
    ehlo_domain: str | None = None  # a shaping `ehlo_domain` still wins, as in KumoMTA
    socks5_proxy: str | None = None  # "host:port": connect through this SOCKS5 proxy
    socks5_source_address: str | None = None  # the public address the proxy sends from
    socks5_username: str | None = None  # RFC 1929 username/password
    socks5_password_file: Path | None = None  # re-read at each connection (a mounted Secret)


@dataclasses.dataclass(frozen=True)
class EgressPoolEntryConfig:
    name: str = ""  # a source of `[egress.sources]`
    weight: int = 1  # relative share of new legs; 0 takes none


@dataclasses.dataclass(frozen=True)
class EgressPoolConfig:
    """`[egress.pools."name"]`: sources chosen by weight for each leg's attempt."""

    sources: tuple[EgressPoolEntryConfig, ...] = ()


@dataclasses.dataclass(frozen=True)
class EgressConfig:
    """`[egress]`: sources and pools; none configured: every connection is the kernel's choice
    (source "unspecified", ready queue = site name), as before."""

    sources: Mapping[str, EgressSourceConfig] = dataclasses.field(default_factory=dict)
    pools: Mapping[str, EgressPoolConfig] = dataclasses.field(default_factory=dict)
    default_pool: str | None = None
    tenant_pools: Mapping[str, str] = dataclasses.field(default_factory=dict)  # tenant -> pool
    retry_interval: Duration = Duration(5.0)  # an unavailable source is tried again after
    max_retry_interval: Duration = Duration(300.0)  # ... doubling up to this


@dataclasses.dataclass(frozen=True)
class HttpConfig:
    listen: tuple[str, ...] = DEFAULT_HTTP_LISTEN
    trusted_networks: tuple[str, ...] = TRUSTED_NETWORKS
    users_file: Path | None = None
    users_dir: Path | None = None
    tokens_file: Path | None = None
    admin_users: tuple[str, ...] = ()
    max_body_bytes: int = 2 * 1024 * 1024
    deferred_generation_workers: int = 2
    inject_rate: str | None = None  # messages per credential ("1000/m"); 429 over it


@dataclasses.dataclass(frozen=True)
class ShapingConfig:
    """Shaping files, merged in order over the built-in one (`include_default`)."""

    files: tuple[Path, ...] = ()
    include_default: bool = True
    reload_interval: Duration = Duration(10.0)  # changed files are re-read this often


@dataclasses.dataclass(frozen=True)
class RedisConfig:
    """Shared throttles and connection leases; none configured = in process memory."""

    url: str | None = None  # redis://host:port/db or rediss:// (TLS)
    cluster: bool = False
    username: str | None = None
    password: str | None = None  # prefer password_file (a mounted Secret)
    password_file: Path | None = None
    tls_ca_file: Path | None = None
    timeout: Duration = Duration(0.5)
    local_share: float = 0.5  # share of a cluster-wide limit enforced while Redis is away
    probe_interval: Duration = Duration(5.0)


@dataclasses.dataclass(frozen=True)
class TsaConfig:
    """Traffic-shaping automation daemons; none configured = automation runs on the node."""

    publish: tuple[str, ...] = ()  # base URL of every TSA replica (each gets every record)
    subscribe: str | None = None  # base URL of one TSA (a ClusterIP Service)
    token_file: Path | None = None  # bearer token sent to the TSA
    poll_interval: Duration = Duration(10.0)  # how often the shaping overrides are fetched
    outbox_path: Path | None = None  # durable publish backlog; default <spool>/tsa-outbox
    outbox_max_records: int = 100_000  # per TSA URL; the oldest are dropped (and counted)
    batch_size: int = 500
    batch_delay: Duration = Duration(0.2)


DkimAlgorithm = Literal["rsa-sha256", "ed25519-sha256"]  # RFC 6376 3.3, RFC 8463
DkimCanonicalization = Literal[
    "relaxed/relaxed", "relaxed/simple", "simple/relaxed", "simple/simple"
]
# What KumoMTA's and OpenDKIM's defaults sign (RFC 6376 5.4.1); absent ones are left out of h=.
DKIM_DEFAULT_HEADERS = (
    "From", "Reply-To", "Sender", "Subject", "Date", "Message-ID", "To", "Cc",
    "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "In-Reply-To", "References",
    "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "Feedback-ID",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class DkimKeyConfig:
    """One more signature for a domain: `[[dkim."example.com".keys]]` (RSA + Ed25519, rotation)."""

    selector: str = ""
    key_file: Path | None = None
    algorithm: DkimAlgorithm = "rsa-sha256"


@dataclasses.dataclass(frozen=True)
class DkimDomainConfig:
    """`[dkim."example.com"]`: the table's own selector/key_file/algorithm is its first key;
    `keys` adds more. `headers`, `over_sign`, `required` apply to every key of the domain."""

    selector: str = ""
    key_file: Path | None = None
    algorithm: DkimAlgorithm = "rsa-sha256"
    headers: tuple[str, ...] = DKIM_DEFAULT_HEADERS
    over_sign: bool = False  # list each header once more than present: additions break it
    required: bool = False  # signing failed: 451/503, the message is not taken unsigned
    canonicalization: DkimCanonicalization = "relaxed/relaxed"
    keys: tuple[DkimKeyConfig, ...] = ()

    def signing_keys(self) -> tuple[DkimKeyConfig, ...]:
        """Every key of the domain, the table's own first (if it names one)."""
        own = (DkimKeyConfig(self.selector, self.key_file, self.algorithm),)
        return (own if self.selector or self.key_file else ()) + self.keys


@dataclasses.dataclass(frozen=True)
class LogConfig:
    path: Path | None = None  # rotating segment files here (none = stdout only)
    stdout: bool = True
    segment_max_bytes: int = 100 * 1024 * 1024  # a segment is closed and compressed past this
    segment_max_age: Duration = Duration(3600.0)  # ... or once it is this old
    retention: Duration = Duration(7 * 86400.0)  # closed segments older are deleted; 0 = never
    headers: tuple[str, ...] = ()  # message headers copied into every record ("Subject", ...)


# What KumoMTA users expect a webhook to carry: outcomes, not receptions.
WEBHOOK_DEFAULT_TYPES: tuple[RecordType, ...] = (
    "Delivery", "Bounce", "TransientFailure", "Expiration", "AdminBounce", "Rejection",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class WebhookConfig:
    """`[[webhooks]]`: POST batches of log records (a JSON array) to `url`, signed, durably."""

    url: str = ""
    name: str = ""  # queue directory and metrics label; default: a hash of the URL
    types: tuple[RecordType, ...] = WEBHOOK_DEFAULT_TYPES
    batch_size: int = 100
    max_delay: Duration = Duration(1.0)  # a partial batch waits at most this long
    secret_file: Path | None = None  # HMAC-SHA256 key; X-MTA-Signature header when set
    timeout: Duration = Duration(10.0)
    max_backlog: int = 100_000  # records queued on disk; beyond, the oldest are dropped
    retry_interval: Duration = Duration(1.0)  # first retry; doubles up to max_retry_interval
    max_retry_interval: Duration = Duration(300.0)


@dataclasses.dataclass(frozen=True)
class BounceConfig:
    """`[bounce]`: classifier rules files layered, in order, over the shipped default rules."""

    rules_files: tuple[Path, ...] = ()


@dataclasses.dataclass(frozen=True)
class SuppressionConfig:
    """`[suppression]`: hard-bounced recipients are refused per tenant until `ttl` passes."""

    enabled: bool = True
    classes: tuple[str, ...] = ("InvalidRecipient", "BadDomain")  # Bounce classes that add
    ttl: Duration = Duration(30 * 86400.0)

    def __post_init__(self) -> None:
        if self.ttl <= 0:
            raise ConfigError(f"suppression.ttl: must be greater than zero, got {self.ttl}")


@dataclasses.dataclass(frozen=True)
class Config:
    node: NodeConfig = dataclasses.field(default_factory=NodeConfig)
    spool: SpoolConfig = dataclasses.field(default_factory=SpoolConfig)
    smtp: SmtpConfig = dataclasses.field(default_factory=SmtpConfig)
    http: HttpConfig = dataclasses.field(default_factory=HttpConfig)
    dns: DnsConfig = dataclasses.field(default_factory=DnsConfig)
    delivery: DeliveryConfig = dataclasses.field(default_factory=DeliveryConfig)
    queue: QueueConfig = dataclasses.field(default_factory=QueueConfig)
    routes: tuple[RouteConfig, ...] = ()
    egress: EgressConfig = dataclasses.field(default_factory=EgressConfig)
    log: LogConfig = dataclasses.field(default_factory=LogConfig)
    shaping: ShapingConfig = dataclasses.field(default_factory=ShapingConfig)
    redis: RedisConfig = dataclasses.field(default_factory=RedisConfig)
    tsa: TsaConfig = dataclasses.field(default_factory=TsaConfig)
    dkim: Mapping[str, DkimDomainConfig] = dataclasses.field(default_factory=dict)
    webhooks: tuple[WebhookConfig, ...] = ()
    bounce: BounceConfig = dataclasses.field(default_factory=BounceConfig)
    suppression: SuppressionConfig = dataclasses.field(default_factory=SuppressionConfig)


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Load `path` (TOML; None = embedded defaults) and apply `MTA_*` environment overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_toml(Path(path))
    _apply_env(raw, os.environ if environ is None else environ)
    return config_from_mapping(raw)


def config_from_mapping(raw: Mapping[str, Any]) -> Config:
    """Build and validate a Config from a parsed TOML document."""
    config: Config = _build(Config, dict(raw), "")
    _validate(config)
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def is_config_env(name: str) -> bool:
    """True when the environment variable `name` is a config override (not a reserved one)."""
    return (
        name.startswith(ENV_PREFIX)
        and name not in RESERVED_ENV
        and not name.startswith(RESERVED_ENV_PREFIXES)
    )


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not is_config_env(name):
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        target = raw
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ConfigError(f"{name}: {'.'.join(keys)} is not a table in the config file")
        target[keys[-1]] = _env_value(value)


def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _build(cls: type[Any], raw: Any, path: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'config'}: expected a table, got {type(raw).__name__}")
    hints = get_type_hints(cls)
    fields = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(f"{where}{unknown[0]}: unknown key")
    values = {key: _convert(hints[key], value, _join(path, key)) for key, value in raw.items()}
    return cls(**values)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _convert(hint: Any, value: Any, path: str) -> Any:
    if hint is Duration:
        return _guard(path, parse_duration, value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
    origin = get_origin(hint)
    if origin is tuple:
        return _convert_tuple(get_args(hint)[0], value, path)
    if origin in (dict, Mapping):
        return _convert_table(get_args(hint)[1], value, path)
    if origin is Literal:
        if value not in get_args(hint):
            choices = ", ".join(repr(choice) for choice in get_args(hint))
            raise ConfigError(f"{path}: {value!r} is not one of {choices}")
        return value
    if origin is not None:  # Optional[X] / X | None
        if value is None:
            return None
        inner = next(arg for arg in get_args(hint) if arg is not type(None))
        return _convert(inner, value, path)
    return _convert_scalar(hint, value, path)


def _convert_tuple(item_hint: Any, value: Any, path: str) -> tuple[Any, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
    return tuple(_convert(item_hint, item, _join(path, i)) for i, item in enumerate(value))


def _convert_table(item_hint: Any, value: Any, path: str) -> Mapping[str, Any]:
    """A table of named entries, such as `[dkim."example.com"]`: read-only."""
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a table, got {type(value).__name__}")
    return MappingProxyType(
        {str(key): _convert(item_hint, item, _join(path, str(key))) for key, item in value.items()}
    )


def _convert_scalar(hint: Any, value: Any, path: str) -> Any:
    if hint is bool:
        return _to_bool(value, path)
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected an integer, got a boolean")
        if path.endswith("_bytes") and isinstance(value, str):
            return _guard(path, parse_size, value)
        return _guard(path, int, value)
    if hint is float:
        return _guard(path, float, value)
    if hint is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a path string, got {type(value).__name__}")
        return Path(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {type(value).__name__}")
        return value
    raise ConfigError(f"{path}: unsupported config type {hint!r}")


def _to_bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(value, str) and value.lower() in {"false", "0", "no", "off"}:
        return False
    raise ConfigError(f"{path}: expected true or false, got {value!r}")


def _guard(path: str, parse: Any, value: Any) -> Any:
    try:
        return parse(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _validate(config: Config) -> None:
    for i, listen in enumerate(config.smtp.listen):
        _guard(f"smtp.listen[{i}]", parse_hostport, listen)
    for i, network in enumerate(config.smtp.relay_networks):
        _guard(f"smtp.relay_networks[{i}]", ipaddress.ip_network, network)
    for i, listen in enumerate(config.http.listen):
        _guard(f"http.listen[{i}]", parse_hostport, listen)
    for i, network in enumerate(config.http.trusted_networks):
        _guard(f"http.trusted_networks[{i}]", ipaddress.ip_network, network)
    for i, network in enumerate(config.delivery.allowed_private_networks):
        _guard(f"delivery.allowed_private_networks[{i}]", ipaddress.ip_network, network)
    for i, server in enumerate(config.dns.nameservers):
        _guard(f"dns.nameservers[{i}]", lambda text: parse_hostport(text, default_port=53), server)
    from mta.routing.validate import validate_routes  # mta.routing imports this module

    validate_routes(config.routes)
    from mta.egress.validate import validate_egress  # mta.egress imports this module

    validate_egress(config.egress, config.routes)
    _validate_smtp_security(config.smtp)
    for key, spec in (
        ("smtp.auth_rate", config.smtp.auth_rate),
        ("smtp.ip_rate", config.smtp.ip_rate),
        ("http.inject_rate", config.http.inject_rate),
    ):
        if spec is not None:
            _guard(key, parse_throttle_spec, spec)
    for i, rate in enumerate(config.queue.rates):
        _guard(f"queue.rates[{i}].max_message_rate", parse_throttle_spec, rate.max_message_rate)
    _validate_ranges(config)
    _validate_cluster(config)
    _validate_dkim(config)
    _validate_logs(config)
    _validate_drain(config.node)


def _validate_drain(node: NodeConfig) -> None:
    if node.drain_to is not None and not node.drain_to.startswith(("http://", "https://")):
        raise ConfigError(
            f"node.drain_to: expected an http:// or https:// URL, got {node.drain_to!r}"
        )
    if node.drain_user is not None and node.drain_token_file is not None:
        raise ConfigError("node.drain_token_file: use either drain_user or drain_token_file")
    if node.drain_password_file is not None and node.drain_user is None:
        raise ConfigError("node.drain_password_file: needs drain_user")
    if node.drain_to_timeout <= 0 or node.drain_concurrency <= 0:
        raise ConfigError(
            "node.drain_to_timeout, node.drain_concurrency: must be greater than zero"
        )


def _validate_smtp_security(smtp: SmtpConfig) -> None:
    for key in ("implicit_tls_listen", "proxy_protocol_listen"):
        for i, listen in enumerate(getattr(smtp, key)):
            _guard(f"smtp.{key}[{i}]", parse_hostport, listen)
    for i, network in enumerate(smtp.proxy_networks):
        _guard(f"smtp.proxy_networks[{i}]", ipaddress.ip_network, network)
    if (smtp.tls_cert_file is None) != (smtp.tls_key_file is None):
        raise ConfigError("smtp.tls_key_file: tls_cert_file and tls_key_file go together")
    if smtp.implicit_tls_listen and smtp.tls_cert_file is None:
        raise ConfigError("smtp.implicit_tls_listen: needs tls_cert_file and tls_key_file")
    if smtp.proxy_protocol_listen and not smtp.proxy_networks:
        raise ConfigError("smtp.proxy_networks: required when proxy_protocol_listen is set")
    listens = [*smtp.listen, *smtp.implicit_tls_listen, *smtp.proxy_protocol_listen]
    twice = sorted({listen for listen in listens if listens.count(listen) > 1})
    if twice:
        raise ConfigError(f"smtp: listener {twice[0]} appears twice across the listen lists")
    for key in ("auth_max_failures", "max_data_in_flight_bytes", "auth_failure_window"):
        if getattr(smtp, key) <= 0:
            raise ConfigError(f"smtp.{key}: must be greater than zero, got {getattr(smtp, key)}")


def _validate_cluster(config: Config) -> None:
    if not 0 < config.redis.local_share <= 1:
        raise ConfigError(f"redis.local_share: must be in (0, 1], got {config.redis.local_share}")
    if config.redis.url is not None and not config.redis.url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise ConfigError(
            f"redis.url: expected redis://, rediss:// or unix://, got {config.redis.url!r}"
        )
    urls = [("tsa.publish", u) for u in config.tsa.publish]
    if config.tsa.subscribe is not None:
        urls.append(("tsa.subscribe", config.tsa.subscribe))
    for key, url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{key}: expected an http:// or https:// URL, got {url!r}")
    for key, value in (
        ("tsa.outbox_max_records", config.tsa.outbox_max_records),
        ("tsa.batch_size", config.tsa.batch_size),
    ):
        if value <= 0:
            raise ConfigError(f"{key}: must be greater than zero, got {value}")


def _validate_ranges(config: Config) -> None:
    positive = {
        "smtp.max_message_bytes": config.smtp.max_message_bytes,
        "smtp.max_recipients": config.smtp.max_recipients,
        "smtp.max_connections": config.smtp.max_connections,
        "smtp.max_connections_per_ip": config.smtp.max_connections_per_ip,
        "delivery.connection_limit": config.delivery.connection_limit,
        "delivery.max_deliveries_per_connection": config.delivery.max_deliveries_per_connection,
        "delivery.max_recipients_per_batch": config.delivery.max_recipients_per_batch,
        "delivery.max_ready": config.delivery.max_ready,
        "http.max_body_bytes": config.http.max_body_bytes,
        "http.deferred_generation_workers": config.http.deferred_generation_workers,
        "queue.retry_interval": config.queue.retry_interval,
        "queue.max_age": config.queue.max_age,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key}: must be greater than zero, got {value}")
    if not 0 < config.delivery.smtp_port < 65536:
        raise ConfigError(f"delivery.smtp_port: {config.delivery.smtp_port} is not a TCP port")
    if not 0 < config.delivery.mta_sts_port < 65536:
        port = config.delivery.mta_sts_port
        raise ConfigError(f"delivery.mta_sts_port: {port} is not a TCP port")
    if config.queue.max_retry_interval < config.queue.retry_interval:
        raise ConfigError("queue.max_retry_interval: must not be shorter than retry_interval")
    if not 0 <= config.queue.jitter < 1:
        raise ConfigError(f"queue.jitter: must be in [0, 1), got {config.queue.jitter}")


def _validate_dkim(config: Config) -> None:
    for domain, table in config.dkim.items():
        path = f'dkim."{domain}"'
        try:
            domain.encode("idna")  # d= carries the A-label form
        except UnicodeError:
            raise ConfigError(f"{path}: {domain!r} is not a domain name") from None
        if not table.signing_keys():
            raise ConfigError(f"{path}: needs selector and key_file, or [[{path}.keys]]")
        if not any(name.lower() == "from" for name in table.headers):
            raise ConfigError(f"{path}.headers: must include From (RFC 6376 5.4)")
        own = [(path, table.signing_keys()[0])] if table.selector or table.key_file else []
        listed = [(f"{path}.keys[{i}]", key) for i, key in enumerate(table.keys)]
        seen: set[str] = set()
        for where, key in own + listed:
            if not key.selector or key.key_file is None:
                raise ConfigError(f"{where}: selector and key_file are both required")
            if key.selector in seen:
                raise ConfigError(f"{where}.selector: {key.selector!r} is listed twice")
            seen.add(key.selector)


_WEBHOOK_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")  # a safe directory name


def _validate_logs(config: Config) -> None:
    if config.log.segment_max_bytes <= 0 or config.log.segment_max_age <= 0:
        raise ConfigError("log.segment_max_bytes, log.segment_max_age: must be greater than zero")
    seen: set[str] = set()
    for i, hook in enumerate(config.webhooks):
        path = f"webhooks[{i}]"
        if not hook.url.startswith(("http://", "https://")):
            raise ConfigError(f"{path}.url: expected an http:// or https:// URL, got {hook.url!r}")
        if hook.name and not _WEBHOOK_NAME.match(hook.name):
            raise ConfigError(f"{path}.name: use letters, digits, '.', '_' and '-' only")
        for key in ("batch_size", "max_backlog", "timeout", "retry_interval"):
            if getattr(hook, key) <= 0:
                raise ConfigError(f"{path}.{key}: must be greater than zero")
        if hook.max_retry_interval < hook.retry_interval:
            raise ConfigError(f"{path}.max_retry_interval: must not be shorter than retry_interval")
        key = hook.name or hook.url
        if key in seen:
            raise ConfigError(f"{path}: a second webhook for {key!r}; give each a distinct name")
        seen.add(key)
