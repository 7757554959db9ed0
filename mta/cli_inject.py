"""`mta inject`: hand a message file (or a ready-made inject request) to a node over HTTP."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mta.cli_common import (
    EXIT_OK,
    EXIT_REMOTE,
    Subparsers,
    UsageError,
    emit,
    fail,
    leaf,
    remote,
    strerror,
)
from mta.client import AdminClient

STDIN = "-"


def register(commands: Subparsers) -> None:
    """Add `inject`. Its `--json FILE` names the request; JSON output is `-o json` here."""
    parser = leaf(
        commands,
        "inject",
        _inject,
        json_flag=False,
        help="inject a message through the HTTP API",
        description="Inject FILE (a whole RFC 5322 message, '-' for stdin) for the --to "
        "recipients, or post a ready-made KumoMTA inject request with --json FILE.",
    )
    parser.add_argument("file", nargs="?", metavar="FILE", help="the message ('-': stdin)")
    parser.add_argument("--from", dest="sender", metavar="SENDER", help="envelope sender")
    parser.add_argument(
        "--to", dest="recipients", action="append", metavar="RCPT", help="recipient; repeatable"
    )
    parser.add_argument(
        "--json", dest="payload", metavar="FILE", help="an /api/inject/v1 request ('-': stdin)"
    )


@remote
def _inject(args: argparse.Namespace, client: AdminClient) -> int:
    if args.payload is not None:
        if args.file or args.sender is not None or args.recipients:
            raise UsageError("--json FILE is the whole request: drop FILE, --from and --to")
        answer = client.inject(_read_payload(args.payload))
    else:
        sender, recipients, path = _message_args(args)
        answer = client.inject_message(sender, recipients, _read_text(path))
    emit(args, answer, result_text)
    failed = answer.get("fail_count", 0) if isinstance(answer, dict) else 0
    if failed:
        return fail(args, f"{failed} recipient(s) failed", EXIT_REMOTE)
    return EXIT_OK


def _message_args(args: argparse.Namespace) -> tuple[str, list[str], str]:
    if args.sender is None:
        raise UsageError("--from is required (use --from '' for a null sender)")
    if not args.recipients:
        raise UsageError("give at least one --to")
    if not args.file:
        raise UsageError("which message? give FILE ('-' for stdin)")
    return args.sender, args.recipients, args.file


def _read_text(path: str) -> str:
    try:
        raw = sys.stdin.buffer.read() if path == STDIN else Path(path).read_bytes()
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {_name(path)}: {strerror(exc)}") from None


def _read_payload(path: str) -> dict[str, Any]:
    text = _read_text(path)
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{_name(path)} is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise UsageError(f"{_name(path)}: expected a JSON object (an inject request)")
    return payload


def _name(path: str) -> str:
    return "stdin" if path == STDIN else path


def result_text(answer: Any) -> str:
    """ "2 accepted, 1 failed" and one line per error."""
    if not isinstance(answer, dict):
        return str(answer)
    lines = [f"{answer.get('success_count', 0)} accepted, {answer.get('fail_count', 0)} failed"]
    lines += [f"error: {error}" for error in answer.get("errors") or []]
    return "\n".join(lines)
