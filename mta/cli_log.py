"""`mta log search`: a message's history from the node's local log segments.

    mta log search --id ID | --recipient ADDR [--path DIR | --config FILE] [--since WHEN]
                   [--table]

Reads every record file under the log directory (compressed segments, the open one, and a
`records.jsonl` from older versions) and prints the matching records in time order: as
JSON lines (default), or as a table with `--table`. `--since` takes an age ("2h", "3d"), an
ISO 8601 time ("2025-06-01T12:00:00Z") or Unix seconds. Exit 0 when something matched, 1
when nothing did, 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from mta.cli_common import EXIT_OK, EXIT_USAGE, Subparsers, strerror
from mta.cli_format import table
from mta.config import ConfigError, load_config
from mta.log_segments import read_lines, segment_files
from mta.units import parse_duration

EXIT_NOTHING = 1  # like grep: nothing matched
CONTENT_WIDTH = 60  # response text in --table is cut here
TABLE_HEADERS = ("time", "type", "id", "recipient", "site", "attempts", "code", "response")


@dataclass(frozen=True)
class Query:
    """What to look for: exact id and/or recipient (case-insensitive), not older than since."""

    id: str | None = None
    recipient: str | None = None
    since: float | None = None

    def quick(self, line: bytes) -> bool:
        """A cheap byte test that every matching line passes (most others do not)."""
        if self.id is not None and self.id.encode() not in line:
            return False
        return self.recipient is None or self.recipient.encode().lower() in line.lower()

    def matches(self, record: dict[str, Any]) -> bool:
        if self.id is not None and record.get("id") != self.id:
            return False
        if self.recipient is not None:
            found = str(record.get("recipient") or "")
            if found.casefold() != self.recipient.casefold():
                return False
        return self.since is None or float(record.get("timestamp") or 0) >= self.since


def register(commands: Subparsers) -> None:
    """Add `log` with its `search` subcommand."""
    log = commands.add_parser("log", help="search the node's local log records")
    log.set_defaults(local=True)
    actions = log.add_subparsers(dest="log_command", required=True, metavar="ACTION")
    search = actions.add_parser(
        "search",
        help="print a message's or a recipient's records, oldest first",
        description="Print matching records from the log segments under [log] path.",
    )
    search.add_argument("--id", help="the message id (spool id) of the records")
    search.add_argument("--recipient", metavar="ADDR", help="the recipient (any case)")
    search.add_argument("--path", metavar="DIR", help="the log directory (default: [log] path)")
    search.add_argument(
        "--config",
        default=os.environ.get("MTA_CONFIG"),
        help="the node's config, for [log] path (default: $MTA_CONFIG)",
    )
    search.add_argument("--since", metavar="WHEN", help='"2h", "3d", an ISO 8601 time, or epoch')
    search.add_argument("--table", action="store_true", help="a readable table, not JSON lines")
    search.set_defaults(func=_search, local=True, prog=search.prog)


def _search(args: argparse.Namespace) -> int:
    try:
        query = _query(args)
        directory = _directory(args)
    except ValueError as exc:
        print(f"{args.prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        found = search(directory, query)
    except OSError as exc:
        print(f"{args.prog}: {directory}: {strerror(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if not found:
        print(f"{args.prog}: no matching records under {directory}", file=sys.stderr)
        return EXIT_NOTHING
    print(_table(found) if args.table else "\n".join(_json_lines(found)))
    return EXIT_OK


def _query(args: argparse.Namespace) -> Query:
    if args.id is None and args.recipient is None:
        raise ValueError("give --id ID or --recipient ADDR")
    since = None if args.since is None else parse_since(args.since)
    return Query(id=args.id, recipient=args.recipient, since=since)


def _directory(args: argparse.Namespace) -> Path:
    if args.path is not None:
        return Path(args.path)
    try:
        path = load_config(args.config).log.path
    except ConfigError as exc:
        raise ValueError(f"config: {exc}") from None
    if path is None:
        raise ValueError("no [log] path in the config: give --path DIR")
    return path


def parse_since(text: str, now: float | None = None) -> float:
    """Unix time from "2h" (that long ago), an ISO 8601 time (UTC if no zone), or seconds."""
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.timestamp()
    try:
        age = parse_duration(text)
    except ValueError:
        raise ValueError(f'--since: {text!r} is not an age ("2h"), a time or epoch') from None
    return (time.time() if now is None else now) - age


def search(directory: Path, query: Query) -> list[dict[str, Any]]:
    """Matching records of every record file under `directory`, oldest first."""
    if not directory.is_dir():
        raise FileNotFoundError(2, "No such directory", str(directory))
    found = list(_matches(directory, query))
    found.sort(key=lambda record: float(record.get("timestamp") or 0))  # stable: file order
    return found


def _matches(directory: Path, query: Query) -> Iterator[dict[str, Any]]:
    for path in segment_files(directory):
        if query.since is not None and _modified(path) < query.since:
            continue  # last written before `since`: every record in it is older
        for line in read_lines(path):
            if not query.quick(line):
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a damaged line; the others are still worth showing
            if isinstance(record, dict) and query.matches(record):
                yield record


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # compressed meanwhile: the twin keeps the mtime
        return float("inf")


def _json_lines(records: list[dict[str, Any]]) -> Iterator[str]:
    for record in records:
        yield orjson.dumps(record).decode()


def _table(records: list[dict[str, Any]]) -> str:
    return table(TABLE_HEADERS, (_row(record) for record in records))


def _row(record: dict[str, Any]) -> list[Any]:
    response = record.get("response") or {}
    moment = dt.datetime.fromtimestamp(float(record.get("timestamp") or 0), dt.UTC)
    content = str(response.get("content") or "").replace("\n", " ")
    return [
        moment.strftime("%Y-%m-%d %H:%M:%S"),
        record.get("type"),
        record.get("id") or None,
        record.get("recipient") or None,
        record.get("site") or None,
        record.get("num_attempts"),
        response.get("code"),
        content[:CONTENT_WIDTH],
    ]
