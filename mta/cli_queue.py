"""`mta queue summary` and `mta queue inspect ID`: what is waiting in a node's queues."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Mapping
from typing import Any

from mta.cli_common import EXIT_OK, Subparsers, add_connection_options, emit, leaf, remote
from mta.cli_format import cell_text, key_values, records, relative
from mta.cli_summary import summary_text
from mta.client import AdminClient

# KumoMTA's MessageInformation fields first, in this order; others (ours) follow as found.
_MESSAGE_FIELDS = ("sender", "recipient", "created", "due", "num_attempts", "meta")
_TIMES = ("created", "due")
_OWN_SECTIONS = ("data", "queues")  # shown below the fields, not as one
_LEG_COLUMNS = (
    ("QUEUE", "queue_name"),
    ("STATE", "state"),
    ("DUE", "due"),
    ("ATTEMPTS", "num_attempts"),
    ("READY QUEUE", "ready_queue"),
    ("RECIPIENTS", "recipients"),
    ("LAST REPLY", "last_reply"),
)


def register(commands: Subparsers) -> None:
    """Add `queue summary|inspect` (and kcli's `queue-summary`, `inspect-message`)."""
    queue = commands.add_parser("queue", help="show what is queued on the node")
    add_connection_options(queue)
    actions = queue.add_subparsers(dest="action", required=True, metavar="{summary,inspect}")
    leaf(actions, "summary", _summary, help="counts and ages per scheduled and ready queue")
    _add_inspect(actions, "inspect", help="show one message (add --body for its content)")
    leaf(commands, "queue-summary", _summary)
    _add_inspect(commands, "inspect-message")


def _add_inspect(commands: Subparsers, name: str, **kwargs: Any) -> None:
    parser = leaf(commands, name, _inspect, **kwargs)
    parser.add_argument("id", help="the message id (the `id` of its log records)")
    parser.add_argument(
        "--body", "--want-body", dest="body", action="store_true", help="include the message"
    )


@remote
def _summary(args: argparse.Namespace, client: AdminClient) -> int:
    now = dt.datetime.now(dt.UTC)
    emit(args, client.queue_summary(), lambda answer: summary_text(answer, now))
    return EXIT_OK


@remote
def _inspect(args: argparse.Namespace, client: AdminClient) -> int:
    now = dt.datetime.now(dt.UTC)
    answer = client.inspect_message(args.id, want_body=args.body)
    emit(args, answer, lambda data: message_text(data, now))
    return EXIT_OK


def message_text(answer: Any, now: dt.datetime) -> str:
    """Envelope, times and meta; then one row per destination (leg); then the content."""
    if not isinstance(answer, Mapping):
        return cell_text(answer)
    message = answer.get("message")
    info: Mapping[str, Any] = message if isinstance(message, Mapping) else {}
    first = [key for key in _MESSAGE_FIELDS if key in info]
    rest = [key for key in info if key not in (*_MESSAGE_FIELDS, *_OWN_SECTIONS)]
    pairs = [("id", answer.get("id"))]
    pairs += [(key, _value(key, info[key], now)) for key in (*first, *rest)]
    blocks = [key_values(pairs)]
    legs = info.get("queues")
    if isinstance(legs, list) and legs:
        rows = [{**leg, "due": relative(leg.get("due"), now)} for leg in legs]
        blocks.append(records(rows, _LEG_COLUMNS, keep=[key for _, key in _LEG_COLUMNS]))
    data = info.get("data")
    if isinstance(data, str):
        blocks.append(data.rstrip("\r\n").replace("\r\n", "\n"))
    return "\n\n".join(blocks)


def _value(key: str, value: Any, now: dt.datetime) -> str:
    if key in _TIMES:
        return relative(value, now)
    if isinstance(value, Mapping):
        # Meta on one line; keys without a value say nothing.
        return " ".join(f"{k}={cell_text(v)}" for k, v in value.items() if v is not None) or "-"
    return cell_text(value)
