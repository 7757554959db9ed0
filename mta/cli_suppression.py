"""`mta suppression list|add|remove`: the node's suppression list, through its admin API."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from mta.cli_common import EXIT_OK, Subparsers, add_connection_options, emit, leaf, remote
from mta.cli_format import Column, records, relative
from mta.client import AdminClient

COLUMNS: tuple[Column, ...] = (
    ("TENANT", "tenant"),
    ("RECIPIENT", "recipient"),
    ("CLASS", "classification"),
    ("SOURCE", "source"),
    ("EXPIRES", "expires"),
    ("REASON", "reason"),
)
_TENANT_HELP = "the tenant (default: the default tenant, mail without X-Tenant)"


def register(commands: Subparsers) -> None:
    """Add `suppression list|add|remove` to `commands`."""
    parser = commands.add_parser(
        "suppression", help="recipients refused after a hard bounce (list, add, remove)"
    )
    add_connection_options(parser)
    actions = parser.add_subparsers(dest="action", required=True, metavar="{list,add,remove}")
    lister = leaf(actions, "list", _list, help="list suppressed recipients")
    lister.add_argument(
        "--tenant", help='only this tenant ("" for the default tenant; default: every tenant)'
    )
    lister.add_argument("--recipient", help="only this recipient")
    adder = leaf(actions, "add", _add, help="suppress a recipient")
    adder.add_argument("recipient", help="the address")
    adder.add_argument("--tenant", help=_TENANT_HELP)
    adder.add_argument("--reason", help="why (shown in the 550 reply)")
    adder.add_argument("--classification", help="a bounce class (default InvalidRecipient)")
    adder.add_argument("--duration", help='how long, e.g. "7d" (default: the node\'s ttl)')
    remover = leaf(actions, "remove", _remove, help="stop suppressing a recipient")
    remover.add_argument("recipient", help="the address")
    remover.add_argument("--tenant", help=_TENANT_HELP)


@remote
def _list(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.suppression_list(tenant=args.tenant, recipient=args.recipient)
    emit(args, answer, lambda data: list_text(data, dt.datetime.now(dt.UTC)))
    return EXIT_OK


@remote
def _add(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.suppression_add(
        args.recipient,
        tenant=args.tenant,
        reason=args.reason,
        classification=args.classification,
        duration=args.duration,
    )
    emit(
        args, answer, lambda data: f"suppressed {data.get('recipient')} until {data.get('expires')}"
    )
    return EXIT_OK


@remote
def _remove(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.suppression_remove(args.recipient, tenant=args.tenant)
    emit(args, answer, lambda data: str(data))
    return EXIT_OK


def list_text(answer: Any, now: dt.datetime) -> str:
    """The entries as a table (expiry relative to now), or a line saying there are none."""
    entries = answer if isinstance(answer, list) else []
    if not entries:
        return "no suppressed recipients"
    rows = [
        {**entry, "tenant": entry.get("tenant") or "(default)",
         "expires": relative(entry.get("expires"), now)}
        for entry in entries
    ]  # fmt: skip
    return records(rows, COLUMNS, keep=[key for _, key in COLUMNS])
