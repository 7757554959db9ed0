"""`mta shaping resolve DOMAIN` and `mta shaping check [FILES...]`: the node's shaping rules,
read locally (no running node needed).

`resolve` builds the rules exactly as a node does (`mta.egress.rules.build_rules`: the
built-in file, `[delivery]`, the `[shaping] files`), finds the destination's MX hosts (`--mx`,
else a relay route of `[[routes]]`, else DNS through `[dns]`) and prints the effective egress
path settings, each with the file and table that set it. `check` loads the rules (or the
given files) and names the file, table and key of the first error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from mta.cli_common import EXIT_INTERRUPTED, EXIT_OK, EXIT_REMOTE, EXIT_USAGE, Subparsers, fail
from mta.config import Config, ConfigError, load_config
from mta.egress.rules import build_rules
from mta.queue.routes import match_route
from mta.units import parse_hostport
from shaping.loader import ShapingError
from shaping.rules import Resolved, ShapingRules, site_name_for

if TYPE_CHECKING:
    from mta.delivery import MxResolver

NONE: Final = "(none)"
FROM_DNS: Final = "DNS"
# Rollup domains of the rules are looked up too (their tables apply to every domain on
# their site); a few at a time, so that a long list does not flood the resolver.
LOOKUP_CONCURRENCY: Final = 8


@dataclass(frozen=True, slots=True)
class Location:
    """Where mail for a domain goes: the site name, its MX hosts, and how they were found."""

    site_name: str
    hosts: tuple[str, ...]
    found_by: str  # "--mx", "relay route" or "DNS"


class LookupFailed(Exception):
    """The MX lookup failed; the message is the reply the node would log."""


def register(commands: Subparsers) -> None:
    """Add `mta shaping resolve|check` to the `mta` parser's subcommands."""
    shaping = commands.add_parser("shaping", help="show and check the shaping rules")
    actions = shaping.add_subparsers(dest="shaping_command", required=True, metavar="ACTION")
    resolve = actions.add_parser(
        "resolve", help="the effective settings for a domain, and which file/table set each"
    )
    resolve.add_argument("domain", metavar="DOMAIN")
    resolve.add_argument(
        "--mx", action="append", default=[], metavar="HOST", help="MX host (repeatable; no DNS)"
    )
    resolve.add_argument("--source", metavar="NAME", help="egress source (its sources tables)")
    _config_option(resolve)
    resolve.set_defaults(func=_resolve, prog=resolve.prog, local=True)
    check = actions.add_parser("check", help="load the shaping files and report the first error")
    check.add_argument(
        "files", nargs="*", metavar="FILE", help="files to check (default: the node's)"
    )
    _config_option(check)
    check.set_defaults(func=_check, prog=check.prog, local=True)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=os.environ.get("MTA_CONFIG"),
        help="TOML config file (default: $MTA_CONFIG, else embedded defaults)",
    )


# -- check ------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    try:
        if args.files:
            ShapingRules.load([Path(name) for name in args.files])
        else:
            build_rules(load_config(args.config))
    except ConfigError as exc:
        return fail(args, f"config error: {exc}", EXIT_USAGE)
    except ShapingError as exc:
        return fail(args, str(exc), EXIT_USAGE)
    print("ok")
    return EXIT_OK


# -- resolve ----------------------------------------------------------------------------


def _resolve(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        rules = build_rules(config)
    except ConfigError as exc:
        return fail(args, f"config error: {exc}", EXIT_USAGE)
    except ShapingError as exc:
        return fail(args, str(exc), EXIT_USAGE)
    try:
        return asyncio.run(_resolve_and_print(args, config, rules))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


async def _resolve_and_print(args: argparse.Namespace, config: Config, rules: ShapingRules) -> int:
    domain = args.domain.strip().rstrip(".").lower()
    if not domain:
        return fail(args, "DOMAIN is empty", EXIT_USAGE)
    location, code = await _locate(args, Locator(config), rules, domain)
    resolved = rules.resolve(
        domain, mx_hosts=location.hosts, source=args.source, site_name=location.site_name
    )
    print("\n".join(report(resolved, location)))
    return code


async def _locate(
    args: argparse.Namespace, locator: Locator, rules: ShapingRules, domain: str
) -> tuple[Location, int]:
    """The domain's location and the exit code. A site found in DNS also binds the rules'
    rollup domains to their sites (their tables apply to every domain on the same site)."""
    if args.mx:
        return Location(site_name_for(args.mx), tuple(args.mx), "--mx"), EXIT_OK
    try:
        location = await locator.locate(domain)
    except LookupFailed as exc:
        # Still worth showing: what the domain's own tables and the defaults say.
        message = f"MX lookup failed ({exc}); provider and site tables do not apply"
        return Location("", (), FROM_DNS), fail(args, message, EXIT_REMOTE)
    if location.found_by == FROM_DNS:
        rules.bind_sites(await locator.rollup_sites(rules.rules.rollup_domains, domain))
    return location, EXIT_OK


class Locator:
    """Finds a domain's site the way the delivery engine does: a relay route, else DNS."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._resolver: MxResolver | None = None

    async def locate(self, domain: str) -> Location:
        """The site of `domain`; raises LookupFailed when DNS has no usable answer."""
        from mta.delivery.mx import relay_site_name

        delivery = self._config.delivery
        route = match_route(self._config.routes, domain)
        if route is not None and route.relay:
            host, port = parse_hostport(route.relay[0], default_port=delivery.smtp_port)
            return Location(relay_site_name(host, port), (host,), "relay route")
        return await self._lookup(domain)

    async def rollup_sites(self, domains: Sequence[str], skip: str) -> dict[str, str]:
        """Site names of the rules' rollup domains (domain -> site), as a node learns them.

        Only from DNS: a relay site is no mailbox provider's, so a rollup table (such as
        the built-in `["comcast.net"]`) must not spread over everything sent to a relay.
        Domains routed to a relay and those whose lookup fails are left out."""
        slots = asyncio.Semaphore(LOOKUP_CONCURRENCY)

        async def site_of(domain: str) -> str | None:
            async with slots:
                try:
                    return (await self._lookup(domain)).site_name
                except LookupFailed:
                    return None

        wanted = [d for d in domains if d != skip and not self._relayed(d)]
        sites = await asyncio.gather(*(site_of(d) for d in wanted))
        return {d: s for d, s in zip(wanted, sites, strict=True) if s}

    def _relayed(self, domain: str) -> bool:
        route = match_route(self._config.routes, domain)
        return route is not None and bool(route.relay)

    async def _lookup(self, domain: str) -> Location:
        from mta.delivery import MxResolver, SiteError

        if self._resolver is None:
            self._resolver = MxResolver(self._config.dns)
        delivery = self._config.delivery
        try:
            site = await self._resolver.resolve_site(
                domain, port=delivery.smtp_port, tls=delivery.enable_tls
            )
        except SiteError as exc:
            raise LookupFailed(str(exc.reply)) from None
        hosts = tuple(host for group in site.hosts for host in group)
        return Location(site.name, hosts, FROM_DNS)


def report(resolved: Resolved, location: Location) -> list[str]:
    """The lines `mta shaping resolve` prints: a header, then `Resolved.explain()`."""
    mx = ", ".join(location.hosts) or NONE
    lines = [
        f"domain: {resolved.domain}",
        f"site: {resolved.site_name or NONE}",
        f"mx: {mx} ({location.found_by})",
        f"source: {resolved.source or NONE}",
        f"providers: {', '.join(resolved.providers) or NONE}",
        "",
        *resolved.explain(),
    ]
    lines.extend(f"# automation rule: {origin}" for _, origin in resolved.automation)
    return lines
