"""`mta tsa --config PATH`: run the traffic-shaping automation daemon (a separate process,
its own StatefulSet): KumoMTA's TSA endpoints on port 8008, state saved to disk.

SIGTERM and SIGINT save the state and exit 0; a bad config file, shaping file or tokens
file exits 2 before listening; a listen failure exits 1. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from mta.cli_common import EXIT_OK, EXIT_USAGE, Subparsers
from mta.config import ConfigError
from mta.tsa_config import daemon_settings, load_tsa_config
from shaping.loader import ShapingError

EXIT_START = 1
ENV_CONFIG = "MTA_TSA_CONFIG"


def register(commands: Subparsers) -> None:
    """Add `mta tsa` to the `mta` parser's subcommands."""
    tsa = commands.add_parser("tsa", help="run the traffic-shaping automation (TSA) daemon")
    tsa.add_argument(
        "--config",
        default=os.environ.get(ENV_CONFIG),
        help=f"the daemon's TOML file ([tsa] table; default: ${ENV_CONFIG}, else defaults)",
    )
    tsa.set_defaults(func=run_tsa, local=True)


def run_tsa(args: argparse.Namespace) -> int:
    """Load the config and serve until SIGTERM/SIGINT."""
    from mta.tsa_config import TsaDaemonConfig
    from shaping.tsa.daemon import TsaDaemon

    try:
        config = load_tsa_config(args.config) if args.config else TsaDaemonConfig()
    except ConfigError as error:
        return _fail(f"config error: {error}")

    async def serve() -> int:
        try:
            daemon = TsaDaemon(daemon_settings(config.tsa))
        except (ShapingError, OSError) as error:
            return _fail(f"cannot start: {error}")
        shutdown = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, shutdown.set)
        try:
            await daemon.run(shutdown)
        except OSError as error:  # the listen address
            print(f"mta tsa: cannot listen: {error}", file=sys.stderr)
            return EXIT_START
        return EXIT_OK

    return asyncio.run(serve())


def _fail(message: str) -> int:
    print(f"mta tsa: {message}", file=sys.stderr)
    return EXIT_USAGE
