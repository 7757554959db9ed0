"""`mta bounce`, `mta suspend`, `mta suspend-ready-q`: create, list and cancel admin rules.

Each command creates a rule when given options (`mta bounce --domain D --reason R`) and has
`list` and `cancel ID` subcommands. KumoMTA's kcli spellings (`bounce-list`, `bounce-cancel
--id ID`, ...) are accepted too, unlisted, so that runbooks written for kcli keep working.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mta.cli_common import EXIT_OK, Subparsers, UsageError, emit, leaf, option, remote
from mta.cli_format import Column, records, remaining
from mta.client import AdminClient

MATCHERS = ("domain", "routing_domain", "tenant", "campaign", "queue_names")
CREATE_ONLY = (*MATCHERS, "everything", "reason", "duration", "expires", "suppress_logging", "name")


@dataclass(frozen=True)
class RuleKind:
    """What differs between bounce, suspend and suspend-ready-q rules."""

    command: str
    noun: str
    help: str
    create: Callable[[AdminClient, argparse.Namespace], Any]
    list: Callable[[AdminClient], Any]
    cancel: Callable[[AdminClient, str], Any]
    columns: Sequence[Column]
    keep: Sequence[str]


def _bounce(client: AdminClient, args: argparse.Namespace) -> Any:
    return client.bounce(
        args.reason, suppress_logging=args.suppress_logging, **_matchers(args), **_expiry(args)
    )


def _suspend(client: AdminClient, args: argparse.Namespace) -> Any:
    return client.suspend(args.reason, **_matchers(args), **_expiry(args))


def _suspend_ready_q(client: AdminClient, args: argparse.Namespace) -> Any:
    if not args.name:
        raise UsageError("--name is required (the ready queue to suspend)")
    return client.suspend_ready_q(args.name, args.reason, **_expiry(args))


def _matchers(args: argparse.Namespace) -> dict[str, Any]:
    given = {key: getattr(args, key) for key in MATCHERS if getattr(args, key)}
    if given and args.everything:
        raise UsageError("--everything cannot be combined with other matchers")
    if "queue_names" in given and len(given) > 1:
        # The node would ignore the other criteria (queue_names takes precedence).
        raise UsageError("--queue names exact queues: drop the other matchers")
    if not given and not args.everything:
        # An empty request matches every queue: make the operator say so.
        raise UsageError(
            "name what to match (--domain, --routing-domain, --tenant, --campaign, --queue)"
            " or pass --everything"
        )
    return given


def _expiry(args: argparse.Namespace) -> dict[str, Any]:
    return {"duration": args.duration, "expires": args.expires}


_SCHED_COLUMNS: tuple[Column, ...] = (
    ("ID", "id"),
    ("DOMAIN", "domain"),
    ("ROUTING DOMAIN", "routing_domain"),
    ("TENANT", "tenant"),
    ("CAMPAIGN", "campaign"),
    ("QUEUES", "queue_names"),
    ("REMAINING", "duration"),
)

KINDS = {
    "bounce": RuleKind(
        command="bounce",
        noun="bounce",
        help="bounce matching queued mail, now and while the rule lasts (list, cancel)",
        create=_bounce,
        list=AdminClient.bounce_list,
        cancel=AdminClient.bounce_cancel,
        columns=(*_SCHED_COLUMNS, ("BOUNCED", "total_bounced"), ("REASON", "reason")),
        keep=("id", "duration", "total_bounced", "reason"),
    ),
    "suspend": RuleKind(
        command="suspend",
        noun="suspension",
        help="hold matching scheduled queues for a while (list, cancel)",
        create=_suspend,
        list=AdminClient.suspend_list,
        cancel=AdminClient.suspend_cancel,
        columns=(*_SCHED_COLUMNS, ("REASON", "reason")),
        keep=("id", "duration", "reason"),
    ),
    "suspend-ready-q": RuleKind(
        command="suspend-ready-q",
        noun="ready-queue suspension",
        help="hold one ready queue's deliveries for a while (list, cancel)",
        create=_suspend_ready_q,
        list=AdminClient.suspend_ready_q_list,
        cancel=AdminClient.suspend_ready_q_cancel,
        columns=(
            ("ID", "id"),
            ("NAME", "name"),
            ("REMAINING", "duration"),
            ("EXPIRES", "expires"),
            ("REASON", "reason"),
        ),
        keep=("id", "name", "duration", "reason"),
    ),
}


def register(commands: Subparsers) -> None:
    """Add bounce, suspend and suspend-ready-q (and the kcli spellings) to `commands`."""
    for kind in KINDS.values():
        parser = leaf(
            commands,
            kind.command,
            _creator(kind),
            help=kind.help,
            description=f"Create a {kind.noun} (the options below), or `list` or `cancel` them.",
        )
        _add_rule_options(parser, kind)
        actions = parser.add_subparsers(dest="action", metavar="{list,cancel}")
        _add_list(actions, "list", kind, help=f"list active {kind.noun}s")
        _add_cancel(actions, "cancel", kind, help=f"cancel a {kind.noun}")
        # kcli's spellings, unlisted in --help to keep it short.
        _add_list(commands, f"{kind.command}-list", kind)
        _add_cancel(commands, f"{kind.command}-cancel", kind)


def _add_rule_options(parser: argparse.ArgumentParser, kind: RuleKind) -> None:
    if kind.command == "suspend-ready-q":
        parser.add_argument("--name", help="the ready queue to suspend")
    else:
        _add_matchers(parser, kind.noun)
    parser.add_argument("--reason", help="why (logged with each affected message); required")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--duration", help='how long the rule lasts, e.g. "5m", "2h" (default 5m)')
    when.add_argument("--expires", help="when the rule ends, RFC 3339 (2025-01-31T12:00:00Z)")
    if kind.command == "bounce":
        parser.add_argument(
            "--suppress-logging", action="store_true", help="log no AdminBounce records"
        )


def _add_matchers(parser: argparse.ArgumentParser, noun: str) -> None:
    group = parser.add_argument_group("what to match (scheduled queues)")
    group.add_argument("--domain", help="recipient domain")
    group.add_argument("--routing-domain", help="routing domain")
    group.add_argument("--tenant", help="tenant")
    group.add_argument("--campaign", help="campaign")
    group.add_argument(
        "--queue",
        dest="queue_names",
        action="append",
        metavar="NAME",
        help="exact scheduled queue name (campaign:tenant@domain); repeatable",
    )
    group.add_argument("--everything", action="store_true", help=f"a {noun} for every queue")


def _add_list(commands: Subparsers, name: str, kind: RuleKind, **kwargs: Any) -> None:
    leaf(commands, name, _lister(kind), **kwargs)


def _add_cancel(commands: Subparsers, name: str, kind: RuleKind, **kwargs: Any) -> None:
    parser = leaf(commands, name, _canceller(kind), **kwargs)
    parser.add_argument("id", nargs="?", help=f"the {kind.noun}'s id (from list)")
    parser.add_argument("--id", dest="id_option", metavar="ID", help="same, kcli spelling")


def _creator(kind: RuleKind) -> Callable[[argparse.Namespace], int]:
    @remote
    def create(args: argparse.Namespace, client: AdminClient) -> int:
        if not args.reason:
            raise UsageError("--reason is required")
        data = kind.create(client, args)
        emit(args, data, lambda answer: created_text(kind, answer))
        return EXIT_OK

    return create


def _lister(kind: RuleKind) -> Callable[[argparse.Namespace], int]:
    @remote
    def list_rules(args: argparse.Namespace, client: AdminClient) -> int:
        _no_create_options(args)
        emit(args, kind.list(client), lambda answer: list_text(kind, answer))
        return EXIT_OK

    return list_rules


def _canceller(kind: RuleKind) -> Callable[[argparse.Namespace], int]:
    @remote
    def cancel(args: argparse.Namespace, client: AdminClient) -> int:
        _no_create_options(args)
        rule_id = _rule_id(args)
        data = kind.cancel(client, rule_id)
        emit(args, data, lambda _: f"cancelled {kind.noun} {rule_id}")
        return EXIT_OK

    return cancel


def _rule_id(args: argparse.Namespace) -> str:
    ids: set[str] = {value for value in (args.id, args.id_option) if value}
    if len(ids) != 1:
        raise UsageError("give one id" if ids else "which one? give its ID (see the list)")
    return ids.pop()


def _no_create_options(args: argparse.Namespace) -> None:
    """`mta bounce --domain x list` would silently ignore --domain; say so instead."""
    given = [key for key in CREATE_ONLY if option(args, key)]
    if given:
        flag = "--" + given[0].replace("_", "-").replace("queue-names", "queue")
        raise UsageError(f"{flag} only applies when creating a rule")


def created_text(kind: RuleKind, answer: Any) -> str:
    """ "created bounce <id>", plus what an immediate sweep reported."""
    if not isinstance(answer, dict):
        return f"created {kind.noun}"
    text = f"created {kind.noun} {answer.get('id', '')}".rstrip()
    bounced = answer.get("bounced") or {}
    if answer.get("total_bounced") or bounced:
        per_queue = ", ".join(f"{queue} {count}" for queue, count in sorted(bounced.items()))
        text += f"\nbounced {answer.get('total_bounced', 0)} now" + (
            f" ({per_queue})" if per_queue else ""
        )
    return text


def list_text(kind: RuleKind, answer: Any) -> str:
    """The active rules as a table (remaining time shortened), or a line saying none."""
    entries = answer if isinstance(answer, list) else []
    if not entries:
        return f"no active {kind.noun}s"
    rows = [{**entry, "duration": remaining(entry.get("duration"))} for entry in entries]
    return records(rows, kind.columns, kind.keep)
