"""`mta dkim keygen`: a new DKIM key file and the DNS records to publish for it.

    mta dkim keygen --domain example.com --selector s1 [--algorithm rsa-sha256] [--bits 2048]
                    [--out DIR]

writes DIR/example.com/s1.key (mode 0600; the layout of one Secret per domain) and prints the
TXT records: the key at s1._domainkey.example.com, and a starting SPF and DMARC record.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import get_args

from mta.cli_common import EXIT_OK, EXIT_USAGE, Subparsers
from mta.config import DkimAlgorithm
from mta.dkim.keys import MIN_RSA_BITS, generate_key, key_pem
from mta.dkim.records import dns_records

KEY_MODE = 0o600  # a private key: readable by the node's user only
MAX_RSA_BITS = 4096  # RFC 8301 3.2: verifiers need not handle more
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")  # RFC 1035 2.3.1 (LDH label)


def register(commands: Subparsers) -> None:
    """Add `dkim` with its `keygen` subcommand."""
    dkim = commands.add_parser("dkim", help="DKIM keys and DNS records")
    dkim.set_defaults(local=True)
    actions = dkim.add_subparsers(dest="dkim_command", required=True, metavar="ACTION")
    keygen = actions.add_parser(
        "keygen",
        help="write a new key and print the DNS records to publish",
        description="Write OUT/DOMAIN/SELECTOR.key (mode 0600) and print the DKIM TXT record "
        "and suggested SPF and DMARC records.",
    )
    keygen.add_argument("--domain", required=True, help="the signing domain (d=)")
    keygen.add_argument("--selector", required=True, help="the selector (s=)")
    keygen.add_argument(
        "--algorithm", choices=get_args(DkimAlgorithm), default="rsa-sha256", help="(rsa-sha256)"
    )
    keygen.add_argument("--bits", type=int, default=2048, help="RSA key size (2048)")
    keygen.add_argument("--out", default=".", metavar="DIR", help="where to write (.)")
    keygen.add_argument("--force", action="store_true", help="replace an existing key file")
    keygen.set_defaults(func=_keygen, local=True, prog=keygen.prog)


def _keygen(args: argparse.Namespace) -> int:
    problem = _problem(args)
    if problem is not None:
        print(f"{args.prog}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    domain = args.domain.lower().rstrip(".")
    key = generate_key(args.algorithm, args.bits)
    path = Path(args.out) / domain / f"{args.selector}.key"
    try:
        _write_private(path, key_pem(key), replace=args.force)
    except OSError as exc:
        hint = " (--force replaces it)" if isinstance(exc, FileExistsError) else ""
        print(f"{args.prog}: cannot write {path}: {exc.strerror or exc}{hint}", file=sys.stderr)
        return EXIT_USAGE
    print(f"; {args.algorithm} private key written to {path} (mode 0600)")
    print(f'; config: [dkim."{domain}"] selector = "{args.selector}", key_file = "{path}"')
    for record in dns_records(domain, args.selector, key):
        print(f"; {record.comment}")
        print(record.zone_line())
    return EXIT_OK


def _problem(args: argparse.Namespace) -> str | None:
    if not _LABEL.match(args.selector):
        return f"--selector: {args.selector!r} is not a DNS label"
    labels = args.domain.rstrip(".").split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return f"--domain: {args.domain!r} is not a domain name"
    if args.algorithm == "rsa-sha256" and not MIN_RSA_BITS <= args.bits <= MAX_RSA_BITS:
        return f"--bits: RSA keys are {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, got {args.bits}"
    return None


def _write_private(path: Path, pem: bytes, *, replace: bool) -> None:
    """Create the file 0600 from the start (never world-readable, not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags, KEY_MODE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), KEY_MODE)  # an existing file replaced with --force
        handle.write(pem)
