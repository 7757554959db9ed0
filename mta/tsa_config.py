"""The TSA daemon's configuration file (`mta tsa --config PATH`), read with the node
config's machinery (frozen dataclasses, unknown keys rejected with their path):

```toml
[tsa]
listen = "0.0.0.0:8008"
state_path = "/var/lib/tsa/state.json"
shaping_files = ["/etc/mta/shaping.toml"]  # after the built-in file unless
include_default_shaping = true            #   this is false
trusted_networks = ["127.0.0.1/32", "::1/128"]
tokens_file = "/etc/tsa/tokens"            # bearer tokens, one per line
save_interval = "30s"
reload_interval = "5s"                     # how often changed files are noticed
```

No environment overrides: the node's `MTA_TSA__*` variables mean the node's `[tsa]`
section, and a pod running both must not have one read as the other.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from pathlib import Path

from mta.config import TRUSTED_NETWORKS, ConfigError, _build, _read_toml
from mta.units import Duration, parse_hostport
from shaping.rules import DEFAULT_SHAPING_FILE
from shaping.tsa.daemon import DEFAULT_PORT, DaemonSettings

DEFAULT_LISTEN = f"0.0.0.0:{DEFAULT_PORT}"


@dataclasses.dataclass(frozen=True)
class TsaDaemonSection:
    """`[tsa]` of the daemon's file."""

    listen: str = DEFAULT_LISTEN
    state_path: Path = Path("var/tsa/state.json")
    shaping_files: tuple[Path, ...] = ()
    include_default_shaping: bool = True
    trusted_networks: tuple[str, ...] = TRUSTED_NETWORKS
    tokens_file: Path | None = None
    save_interval: Duration = Duration(30.0)
    reload_interval: Duration = Duration(5.0)


@dataclasses.dataclass(frozen=True)
class TsaDaemonConfig:
    tsa: TsaDaemonSection = dataclasses.field(default_factory=TsaDaemonSection)


def load_tsa_config(path: str | os.PathLike[str]) -> TsaDaemonConfig:
    """Read and validate the daemon's TOML file; raises ConfigError naming the key."""
    config: TsaDaemonConfig = _build(TsaDaemonConfig, _read_toml(Path(path)), "")
    _validate(config.tsa)
    return config


def daemon_settings(section: TsaDaemonSection) -> DaemonSettings:
    """What the daemon needs, with the built-in shaping file first when included."""
    host, port = parse_hostport(section.listen, DEFAULT_PORT)
    files = ((DEFAULT_SHAPING_FILE,) if section.include_default_shaping else ()) + tuple(
        section.shaping_files
    )
    return DaemonSettings(
        host=host,
        port=port,
        state_path=section.state_path,
        shaping_files=files,
        trusted_networks=section.trusted_networks,
        tokens_file=section.tokens_file,
        save_interval=section.save_interval,
        reload_interval=section.reload_interval,
    )


def _validate(section: TsaDaemonSection) -> None:
    try:
        parse_hostport(section.listen, DEFAULT_PORT)
    except ValueError as error:
        raise ConfigError(f"tsa.listen: {error}") from None
    for i, network in enumerate(section.trusted_networks):
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as error:
            raise ConfigError(f"tsa.trusted_networks[{i}]: {error}") from None
    for key in ("save_interval", "reload_interval"):
        if getattr(section, key) <= 0:
            raise ConfigError(f"tsa.{key}: must be greater than zero")
