"""The files a node reads at start, each with the node's own loader: what `mta check-config`
runs so that it refuses what `mta serve` would refuse, without binding ports, opening the
spool or reaching Redis and the TSA daemons.

`startup_files(config)` lists them (DKIM keys, bounce rules, shaping files, the SMTP TLS pair,
AUTH users and sender policy, the HTTP users and tokens, webhook secrets, the drain, Redis
and TSA credentials); `check_startup_files(config)` loads each one and returns every problem
as one line that starts with the file's path. Every `Path` key of the config is either in
`CHECKED_KEYS` or in `UNCHECKED_KEYS` with the reason the node does not stop on it (a unit
test walks the config tree, so a new file key cannot be forgotten here; another starts a node
on each kind of bad file, so check-config is neither stricter nor looser than the node).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from mta.bounce import load_classifier
from mta.config import Config
from mta.dkim import KeyFile
from mta.drain.client import read_first_line
from mta.egress.limits import redis_password
from mta.egress.rules import build_rules
from mta.http import credentials
from mta.smtp.auth import SmtpUsers
from mta.smtp.sender_policy import SenderPolicy
from mta.smtp.tls import TlsProvider
from mta.webhooks.signing import SecretFile
from shaping.tsa.link import read_token

# Config keys ("[]" any list item, "*" any table name) whose files the node reads at start.
CHECKED_KEYS = frozenset(
    {
        "dkim.*.key_file",
        "dkim.*.keys[].key_file",
        "bounce.rules_files[]",
        "shaping.files[]",
        "smtp.tls_cert_file",
        "smtp.tls_key_file",
        "smtp.auth_users_file",
        "smtp.auth_users_dir",
        "smtp.sender_policy_file",
        "http.users_file",
        "http.users_dir",
        "http.tokens_file",
        "webhooks[].secret_file",
        "node.drain_password_file",
        "node.drain_token_file",
        "redis.password_file",
        "tsa.token_file",
    }
)
# Path keys the node does not refuse to start on, and why.
UNCHECKED_KEYS: Mapping[str, str] = {
    "spool.path": "a directory the node creates and locks when it opens the spool",
    "log.path": "a directory the node creates for its log segments",
    "tsa.outbox_path": "a directory the node creates for the TSA backlog",
    "delivery.tls_ca_file": "loaded at the first verified outbound TLS connection",
    "redis.tls_ca_file": "loaded when the Redis client connects",
    "routes[].transport_file": "missing or bad lines are logged and skipped, never fatal",
    "routes[].auth.password_file": "read at each relay delivery (a rotated Secret)",
    "egress.sources.*.socks5_password_file": "read at each SOCKS5 connection",
}


@dataclasses.dataclass(frozen=True)
class StartupFile:
    """A file the node reads at start, the key naming it, and the node's loader for it."""

    key: str  # the config key's path, as ConfigError names it
    path: Path
    load: Callable[[], object]

    def problem(self) -> str | None:
        """None when the file loads; else one line starting with the file's path."""
        try:
            self.load()
        except OSError as error:  # the loaders that let the OS error through
            return f"{self.path}: {self.key}: {error.strerror or error}"
        except ValueError as error:  # ConfigError and every loader's own error type
            return self._describe(str(error).removeprefix("shaping: "))
        return None

    def _describe(self, text: str) -> str:
        path = str(self.path)
        if text.startswith(f"{path}:") or text.startswith(f"{path} / "):  # the TLS pair
            return text
        if text.startswith(path):  # "<path> is empty"
            return f"{path}: {self.key}{text[len(path) :]}"
        if text.startswith(f"{self.key}:"):
            return f"{path}: {text}"
        return f"{path}: {self.key}: {text}"


def check_startup_files(config: Config) -> list[str]:
    """Every problem the node would stop on in the files `config` names, in config order."""
    problems: list[str] = []
    for item in startup_files(config):
        problem = item.problem()
        if problem is not None and problem not in problems:
            problems.append(problem)
    return problems


def startup_files(config: Config) -> list[StartupFile]:
    """The files the node reads at start, each with the loader the node uses for it."""
    return [
        *_dkim(config),
        *_layers("bounce.rules_files", config.bounce.rules_files, _bounce),
        *_layers("shaping.files", config.shaping.files, functools.partial(_shaping, config)),
        *_smtp(config),
        *_http(config),
        *_webhooks(config),
        *_drain(config),
        *_cluster(config),
    ]


def _dkim(config: Config) -> Iterator[StartupFile]:
    # mta.dkim.build_signer makes a KeyFile of each key (DomainSigner.from_config).
    for domain, table in config.dkim.items():
        own = [(f'dkim."{domain}".key_file', table.key_file, table.algorithm)]
        listed = [
            (f'dkim."{domain}".keys[{i}].key_file', key.key_file, key.algorithm)
            for i, key in enumerate(table.keys)
        ]
        for key, path, algorithm in own + listed:
            if path is not None:
                yield StartupFile(key, path, functools.partial(KeyFile, path, algorithm))


def _layers(
    key: str, files: tuple[Path, ...], load: Callable[[tuple[Path, ...]], object]
) -> Iterator[StartupFile]:
    """Each layered file alone (every bad one is named), then all of them as the node does."""
    for i, path in enumerate(files):
        yield StartupFile(f"{key}[{i}]", path, functools.partial(load, (path,)))
    if len(files) > 1:
        yield StartupFile(key, files[-1], functools.partial(_together, load, files))


def _together(load: Callable[[tuple[Path, ...]], object], files: tuple[Path, ...]) -> None:
    """All the layers at once, unless one alone fails (it is reported on its own)."""
    for path in files:
        try:
            load((path,))
        except (OSError, ValueError):
            return
    load(files)


def _bounce(files: tuple[Path, ...]) -> object:
    return load_classifier(files)


def _shaping(config: Config, files: tuple[Path, ...]) -> object:
    shaping = dataclasses.replace(config.shaping, files=files)
    return build_rules(dataclasses.replace(config, shaping=shaping))


def _smtp(config: Config) -> Iterator[StartupFile]:
    # mta.smtp.security.Security.from_config, one file at a time.
    smtp = config.smtp
    if smtp.tls_cert_file is not None and smtp.tls_key_file is not None:
        pair = functools.partial(TlsProvider, smtp.tls_cert_file, smtp.tls_key_file)
        yield StartupFile("smtp.tls_cert_file", smtp.tls_cert_file, pair)
    if smtp.auth_users_file is not None:
        users = functools.partial(SmtpUsers, smtp.auth_users_file, None)
        yield StartupFile("smtp.auth_users_file", smtp.auth_users_file, users)
    if smtp.auth_users_dir is not None:
        users = functools.partial(SmtpUsers, None, smtp.auth_users_dir)
        yield StartupFile("smtp.auth_users_dir", smtp.auth_users_dir, users)
    if smtp.sender_policy_file is not None:
        policy = functools.partial(SenderPolicy, smtp.sender_policy_file)
        yield StartupFile("smtp.sender_policy_file", smtp.sender_policy_file, policy)


def _http(config: Config) -> Iterator[StartupFile]:
    # mta.http.credentials.CredentialStore.load, one file at a time.
    loaders: list[tuple[str, Path | None, Callable[[Path], object]]] = [
        ("http.users_file", config.http.users_file, credentials.load_users_file),
        ("http.users_dir", config.http.users_dir, credentials.load_users_dir),
        ("http.tokens_file", config.http.tokens_file, credentials.load_tokens_file),
    ]
    for key, path, load in loaders:
        if path is not None:
            yield StartupFile(key, path, functools.partial(load, path))


def _webhooks(config: Config) -> Iterator[StartupFile]:
    for i, hook in enumerate(config.webhooks):
        if hook.secret_file is not None:
            secret = functools.partial(SecretFile, hook.secret_file)
            yield StartupFile(f"webhooks[{i}].secret_file", hook.secret_file, secret)


def _drain(config: Config) -> Iterator[StartupFile]:
    # mta.drain.live.LiveDrain reads them only when drain_to is set.
    node = config.node
    if node.drain_to is None:
        return
    for key, path in (
        ("node.drain_password_file", node.drain_password_file),
        ("node.drain_token_file", node.drain_token_file),
    ):
        if path is not None:
            yield StartupFile(key, path, functools.partial(read_first_line, path))


def _cluster(config: Config) -> Iterator[StartupFile]:
    redis, tsa = config.redis, config.tsa
    if redis.url is not None and redis.password_file is not None:
        password = functools.partial(redis_password, redis)
        yield StartupFile("redis.password_file", redis.password_file, password)
    # mta.egress.node.Egress.start reads the token before it follows the TSAs.
    if (tsa.publish or tsa.subscribe) and tsa.token_file is not None:
        yield StartupFile(
            "tsa.token_file", tsa.token_file, functools.partial(read_token, tsa.token_file)
        )
