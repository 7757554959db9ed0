"""The `mta` command: serve, check-config, sink, and the operator commands that talk to a node.

The operator commands (queue, bounce, suspend, suspend-ready-q, inject) live in `mta/cli_*.py`
and use the HTTP client in `mta/client/`; this module only assembles the parser.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from mta import (
    cli_dkim,
    cli_drain,
    cli_inject,
    cli_log,
    cli_queue,
    cli_rules,
    cli_shaping,
    cli_suppression,
    cli_tsa,
)
from mta.cli_common import CONNECTION_OPTIONS, Parser, add_connection_options, option
from mta.config import Config, ConfigError, load_config
from mta.units import parse_hostport

EXIT_CONFIG = 2
EXIT_START = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if option(args, "local") and any(option(args, key) for key in CONNECTION_OPTIONS):
        parser.error(f"{args.command}: --endpoint and the other node options do not apply")
    logging.basicConfig(
        level=os.environ.get("MTA_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per command
    result: int = args.func(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mta", description="A pure-Python asyncio MTA.")
    add_connection_options(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the node")
    serve.add_argument(
        "--config",
        default=os.environ.get("MTA_CONFIG"),
        help="TOML config file (default: $MTA_CONFIG, else embedded defaults)",
    )
    serve.set_defaults(func=_serve)
    check = commands.add_parser(
        "check-config", help="validate a config file and the files it names, and exit"
    )
    check.add_argument("path", nargs="?", default=os.environ.get("MTA_CONFIG"))
    check.add_argument(
        "--no-files",
        action="store_true",
        help="check the config alone, not the key, rules and secret files it names "
        "(a config checked away from the host that mounts them)",
    )
    check.set_defaults(func=_check_config)
    sink = commands.add_parser("sink", help="run an SMTP sink that stores mail as files")
    sink.add_argument("--listen", default="127.0.0.1:2526", help="host:port (127.0.0.1:2526)")
    sink.add_argument("--dir", default="var/sink", help="where to store messages (var/sink)")
    sink.set_defaults(func=_sink)
    for local in (serve, check, sink):
        local.set_defaults(local=True)
    cli_queue.register(commands)
    cli_rules.register(commands)
    cli_inject.register(commands)
    cli_dkim.register(commands)
    cli_shaping.register(commands)
    cli_tsa.register(commands)
    cli_log.register(commands)
    cli_suppression.register(commands)
    cli_drain.register(commands)  # mta spool drain
    return parser


def _load(path: str | None) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"mta: config error: {exc}", file=sys.stderr)
        return None


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args.path)
    if config is None:
        return EXIT_CONFIG
    from mta.preflight import check_startup_files  # the files the node reads at start

    problems = [] if args.no_files else check_startup_files(config)
    for problem in problems:
        print(f"mta check-config: {problem}", file=sys.stderr)
    if problems:
        return EXIT_CONFIG
    print(f"{args.path or 'embedded defaults'}: OK")
    return 0


def _serve(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    from mta.app import Node  # imported late: check-config needs none of the runtime

    async def serve() -> None:
        await Node(config).run(_shutdown_event())

    return _run(serve())


def _sink(args: argparse.Namespace) -> int:
    from mta.sink import run_sink

    try:
        host, port = parse_hostport(args.listen)
    except ValueError as exc:
        print(f"mta sink: --listen: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    async def sink() -> None:
        await run_sink(Path(args.dir), host, port, _shutdown_event())

    return _run(sink())


def _shutdown_event() -> asyncio.Event:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event


def _run(main: Coroutine[Any, Any, None]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(main)
    except OSError as exc:
        print(f"mta: cannot start: {exc}", file=sys.stderr)
        return EXIT_START
    except Exception as exc:
        print(f"mta: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_START
    return 0
