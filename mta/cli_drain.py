"""`mta spool drain --to URL`: hand a stopped node's spool to a peer node, then leave it empty.

Every queued message goes to the peer's `POST /api/internal/accept/v1` and is removed here
only after the peer's 200. Interrupt it and run it again: what was not removed is sent again
and the peer acknowledges what it already has. Exit 0 only when the spool is empty.

Credentials (an admin user of the peer): --user with $MTA_PASSWORD or --password-file, or
--token-file; without them, `[node] drain_user` / `drain_password_file` / `drain_token_file`
of --config.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from mta.cli_common import (
    ENV_PASSWORD,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REMOTE,
    EXIT_USAGE,
    Subparsers,
    UsageError,
    read_secret,
)
from mta.client.transport import authorization
from mta.config import Config, ConfigError, load_config
from mta.drain.client import DEFAULT_REQUEST_TIMEOUT, PeerClient, auth_header
from mta.drain.drainer import Drainer, DrainReport, recovered_candidates
from spool import Spool, SpoolError, SpoolLocked

PROGRESS_SECONDS = 2.0


def register(commands: Subparsers) -> None:
    """`mta spool drain`."""
    spool = commands.add_parser("spool", help="work on a stopped node's spool")
    actions = spool.add_subparsers(dest="spool_command", required=True, metavar="ACTION")
    drain = actions.add_parser(
        "drain", help="hand every queued message to a peer node (scale-down)"
    )
    drain.add_argument("--to", metavar="URL", help="the peer's HTTP API ([node] drain_to)")
    drain.add_argument(
        "--config",
        default=os.environ.get("MTA_CONFIG"),
        help="the stopped node's TOML config (default: $MTA_CONFIG)",
    )
    drain.add_argument("--spool", metavar="DIR", help="the spool directory ([spool] path)")
    drain.add_argument("--user", help=f"a peer admin user; password from ${ENV_PASSWORD}")
    drain.add_argument("--password-file", metavar="FILE", help="read the password from FILE")
    drain.add_argument("--token-file", metavar="FILE", help="read a Bearer token from FILE")
    drain.add_argument("--concurrency", type=int, metavar="N", help="messages at once (8)")
    drain.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT,
        metavar="SECONDS",
        help=f"per request (default {DEFAULT_REQUEST_TIMEOUT:g})",
    )
    drain.set_defaults(func=run_drain, prog="mta spool drain")


def run_drain(args: argparse.Namespace) -> int:
    """The command: exit 0 when the spool is empty at the end."""
    try:
        config = _config(args)
        peer = _peer(args, config)
        concurrency = args.concurrency or config.node.drain_concurrency
        if concurrency <= 0:
            raise UsageError("--concurrency: must be greater than zero")
        path = Path(args.spool) if args.spool else config.spool.path
        if not path.is_dir():  # opening would create an empty spool and report success
            raise UsageError(f"no spool at {path}")
        return asyncio.run(drain(path, peer, concurrency, fsync=config.spool.fsync))
    except UsageError as exc:
        print(f"mta spool drain: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


async def drain(path: Path, peer: PeerClient, concurrency: int, *, fsync: bool = True) -> int:
    """Drain the spool at `path` into `peer`; the exit code."""
    spool = Spool(path, fsync=fsync)
    try:
        recovered = await spool.open()
    except SpoolLocked:
        print(
            f"mta spool drain: {path} is in use by a running node: stop it first "
            "(or let it drain itself with [node] drain_to)",
            file=sys.stderr,
        )
        return EXIT_REMOTE
    except SpoolError as exc:
        print(f"mta spool drain: cannot open the spool {path}: {exc}", file=sys.stderr)
        return EXIT_REMOTE
    try:
        total = len(recovered)
        print(f"draining {total} spooled messages from {path} to {peer.url}", file=sys.stderr)
        progress = _Progress(total, sys.stderr)
        async with peer:
            report = await Drainer(spool, peer, concurrency=concurrency, progress=progress).run(
                recovered_candidates(recovered)
            )
        left = len(spool)
    finally:
        await spool.close()
    _summary(report, left, sys.stdout)
    return EXIT_OK if left == 0 else EXIT_REMOTE


class _Progress:
    """A line on stderr every few seconds."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self._total = total
        self._stream = stream
        self._last = time.monotonic()

    def __call__(self, report: DrainReport) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_SECONDS:
            self._last = now
            print(f"  {report.removed}/{self._total} handed over", file=self._stream)


def _summary(report: DrainReport, left: int, stream: TextIO) -> None:
    print(
        f"{report.handed_over} handed over, {report.already_there} already at the peer, "
        f"{left} left in the spool",
        file=stream,
    )
    for msg_id, reason in report.refused.items():
        print(f"  {msg_id}: {reason}", file=stream)
    if report.skipped:
        print(
            f"  {report.skipped} deferred inject batches are not messages yet: start the node "
            "without traffic to expand them, then drain again",
            file=stream,
        )
    if report.stopped:
        print(f"stopped early: {report.stopped}; run the command again", file=stream)


def _config(args: argparse.Namespace) -> Config:
    try:
        return load_config(args.config)  # MTA_PASSWORD & co. are reserved, not overrides
    except ConfigError as exc:
        raise UsageError(f"config error: {exc}") from None


def _peer(args: argparse.Namespace, config: Config) -> PeerClient:
    target, auth = _target(args, config), _auth(args, config)
    try:
        return PeerClient(target, auth_header=auth, timeout=args.timeout)
    except ValueError as exc:
        raise UsageError(f"--to: {exc}") from None


def _target(args: argparse.Namespace, config: Config) -> str:
    target: str | None = args.to or config.node.drain_to
    if target is None:
        raise UsageError("--to URL is required (or [node] drain_to in --config)")
    return target


def _auth(args: argparse.Namespace, config: Config) -> str | None:
    if args.user is not None and args.token_file is not None:
        raise UsageError("use either --user or --token-file, not both")
    if args.token_file is not None:
        return authorization(token=read_secret(args.token_file, "token file"))
    if args.user is not None:
        return authorization(args.user, _password(args))
    if args.password_file is not None:
        raise UsageError("--password-file needs --user")
    return _config_auth(config)


def _password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        return read_secret(args.password_file, "password file")
    password = os.environ.get(ENV_PASSWORD)
    if password is None:
        raise UsageError(f"--user needs a password: set {ENV_PASSWORD} or use --password-file")
    return password


def _config_auth(config: Config) -> str | None:
    node = config.node
    try:
        password = None
        if node.drain_password_file is not None:
            password = read_secret(str(node.drain_password_file), "password file")
        return auth_header(
            user=node.drain_user, password=password, token_file=node.drain_token_file
        )
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
