"""What every `mta` command that talks to a node shares: connection options, errors, output.

Connection options may appear at any level (`mta --json bounce list`, `mta bounce list --json`):
each parser declares them with `default=SUPPRESS`, so a later, deeper level never resets a value
given earlier, and `options()` fills in the defaults once at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mta.client import DEFAULT_ENDPOINT, DEFAULT_TIMEOUT, AdminClient, ClientError

# Reserved in mta.config (never config overrides), re-exported for the commands.
from mta.config import ENV_ENDPOINT as ENV_ENDPOINT
from mta.config import ENV_PASSWORD as ENV_PASSWORD

EXIT_OK = 0
EXIT_REMOTE = 1  # the node refused, failed, or could not be reached
EXIT_USAGE = 2  # the command line (or a file it names) cannot be used; argparse's own code
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


Handler = Callable[[argparse.Namespace, AdminClient], int]
CONNECTION_OPTIONS = ("endpoint", "user", "password_file", "token_file", "timeout", "output")
Subparsers = Any  # what add_subparsers() returns; argparse's _SubParsersAction is private


class UsageError(Exception):
    """A command line that cannot be run as given; reported on one line, exit 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `mta bounce: argument --reason: expected one argument`."""

    def error(self, message: str) -> Any:  # argparse declares NoReturn
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def add_connection_options(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    """--endpoint, credentials, --timeout and the output format, all without defaults here."""
    group = parser.add_argument_group("node connection and output")
    group.add_argument(
        "--endpoint",
        metavar="URL",
        default=argparse.SUPPRESS,
        help=f"the node's HTTP API (default: ${ENV_ENDPOINT}, else {DEFAULT_ENDPOINT})",
    )
    group.add_argument(
        "--user", default=argparse.SUPPRESS, help=f"HTTP Basic user; password from ${ENV_PASSWORD}"
    )
    group.add_argument(
        "--password-file",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="read the Basic password from a file",
    )
    group.add_argument(
        "--token-file",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="read a Bearer token from a file",
    )
    group.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        default=argparse.SUPPRESS,
        help=f"seconds to wait for the node (default {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default=argparse.SUPPRESS,
        help="text tables (default) or the node's JSON",
    )
    if json_flag:
        group.add_argument(
            "--json",
            dest="output",
            action="store_const",
            const="json",
            default=argparse.SUPPRESS,
            help="same as --output json",
        )


def leaf(
    commands: Subparsers,
    name: str,
    func: Callable[[argparse.Namespace], int],
    json_flag: bool = True,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """A subcommand parser that knows its handler and its full name (for error lines)."""
    parser: argparse.ArgumentParser = commands.add_parser(name, **kwargs)
    add_connection_options(parser, json_flag=json_flag)
    parser.set_defaults(func=func, prog=parser.prog)
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return value


def option(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    """An option that may have been suppressed (not given at any level)."""
    return getattr(args, name, default)


def wants_json(args: argparse.Namespace) -> bool:
    """True when the node's JSON should be printed instead of text (--json, -o json)."""
    return bool(option(args, "output") == "json")


def client_from(args: argparse.Namespace) -> AdminClient:
    """An AdminClient from the options and the environment; UsageError if they do not fit."""
    endpoint = option(args, "endpoint") or os.environ.get(ENV_ENDPOINT) or DEFAULT_ENDPOINT
    user = option(args, "user")
    token_file = option(args, "token_file")
    if user is not None and token_file is not None:
        raise UsageError("use either --user or --token-file, not both")
    token = read_secret(token_file, "token file") if token_file is not None else None
    password = _password(args) if user is not None else None
    if user is None and option(args, "password_file") is not None:
        raise UsageError("--password-file needs --user")
    timeout = option(args, "timeout", DEFAULT_TIMEOUT)
    try:
        return AdminClient(endpoint, user=user, password=password, token=token, timeout=timeout)
    except ValueError as exc:
        raise UsageError(f"--endpoint: {exc}") from None


def _password(args: argparse.Namespace) -> str:
    path = option(args, "password_file")
    if path is not None:
        return read_secret(path, "password file")
    password = os.environ.get(ENV_PASSWORD)
    if password is None:
        raise UsageError(f"--user needs a password: set {ENV_PASSWORD} or use --password-file")
    return password


def read_secret(path: str, what: str) -> str:
    """The first line of a secret file (editors and `echo` add a newline; HTTP must not)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} {path}: {strerror(exc)}") from None
    secret = text.splitlines()[0] if text else ""
    if not secret:
        raise UsageError(f"{what} {path} is empty")
    return secret


def strerror(exc: BaseException) -> str:
    """The OS's words for a failed file operation ("No such file or directory")."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return str(exc)


def describe(exc: ClientError, args: argparse.Namespace) -> str:
    """The one-line message for a failed request, with a hint where the fix is local."""
    if exc.status == 401:
        where = "--token-file" if option(args, "token_file") else f"--user/{ENV_PASSWORD}"
        return f"401 unauthorized: check {where}"
    return str(exc)


def remote(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """Wrap a handler: build the client, map errors to one stderr line and an exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args, client_from(args))
        except UsageError as exc:
            return fail(args, str(exc), EXIT_USAGE)
        except ClientError as exc:
            # A failed request is about the node, not the subcommand: "mta: 404: no message 1".
            print(f"mta: {describe(exc, args)}", file=sys.stderr)
            return EXIT_REMOTE
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED

    return run


def fail(args: argparse.Namespace, message: str, code: int) -> int:
    """Print `prog: message` on stderr and return `code`."""
    print(f"{option(args, 'prog', 'mta')}: {message}", file=sys.stderr)
    return code


def emit(args: argparse.Namespace, data: Any, text: Callable[[Any], str]) -> None:
    """Print the node's JSON with --json, else `text(data)`."""
    if wants_json(args):
        print(json.dumps(data, indent=2))
        return
    rendered = text(data)
    if rendered:
        print(rendered)
