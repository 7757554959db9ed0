"""Checks of `[[routes]]` at load time; errors name `routes[i].key`."""

from __future__ import annotations

import re
from collections.abc import Sequence

from mta.config import ConfigError, RouteConfig
from mta.units import parse_hostport

from .destination import lmtp_target

SMTP_PORT = 25


def validate_routes(routes: Sequence[RouteConfig]) -> None:
    """Raise ConfigError for the first route that cannot work."""
    for i, route in enumerate(routes):
        validate_route(route, f"routes[{i}]")


def validate_route(route: RouteConfig, path: str) -> None:
    if not route.domains:
        raise ConfigError(f"{path}.domains: at least one domain pattern is required")
    _one_destination(route, path)
    _criteria(route, path)
    for i, relay in enumerate(route.relay):
        where = f"{path}.relay[{i}]" if len(route.relay) > 1 else f"{path}.relay"
        _guard(where, _relay_target, relay)
    if route.lmtp is not None:
        _guard(f"{path}.lmtp", lmtp_target, route.lmtp)
    _relay_only(route, path)
    _auth(route, path)


def _relay_target(text: str) -> None:
    parse_hostport(text, default_port=SMTP_PORT)


def _guard(path: str, check: object, value: str) -> None:
    try:
        check(value)  # type: ignore[operator]
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _one_destination(route: RouteConfig, path: str) -> None:
    given = [
        name
        for name, on in (
            ("mx", route.mx),
            ("relay", bool(route.relay)),
            ("lmtp", route.lmtp is not None),
            ("discard", route.discard),
            ("transport_file", route.transport_file is not None),
        )
        if on
    ]
    if len(given) > 1:
        raise ConfigError(f"{path}.{given[1]}: a route has one destination, {given[0]} is set too")


def _criteria(route: RouteConfig, path: str) -> None:
    if route.regex is not None:
        try:
            re.compile(route.regex)
        except re.error as exc:
            raise ConfigError(f"{path}.regex: invalid regular expression: {exc}") from None
    for i, address in enumerate(route.addresses):
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain:
            raise ConfigError(f"{path}.addresses[{i}]: {address!r} is not local@domain")
    if route.tenant is not None and not route.tenant:
        raise ConfigError(f"{path}.tenant: must not be empty")


def _relay_only(route: RouteConfig, path: str) -> None:
    if route.relay:
        return
    for key, value in (("tls", route.tls), ("auth", route.auth)):
        if value is not None:
            raise ConfigError(f"{path}.{key}: only a relay route has {key}")
    if not route.tls_verify:
        raise ConfigError(f"{path}.tls_verify: only a relay route has tls_verify")


def _auth(route: RouteConfig, path: str) -> None:
    auth = route.auth
    if auth is None:
        return
    if not auth.username:
        raise ConfigError(f"{path}.auth.username: required")
    if (auth.password_file is None) == (auth.password_env is None):
        raise ConfigError(f"{path}.auth: give exactly one of password_file, password_env")
    if route.tls == "none":
        # RFC 4954 4/14: credentials never cross the network in plain text.
        raise ConfigError(f'{path}.tls: must be "starttls" or "implicit" when auth is set')
