"""DKIM in tests: keys on disk, their TXT records on the test DNS server, and dkimpy's verifier
asking that server over real DNS packets (never our own signing code)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

import dkim
import dns.resolver

from mta.dkim.keys import SigningKey, generate_key, key_pem
from mta.dkim.records import key_record
from tests.support.dns_server import TestDNSServer

_SIGNATURE_FIELD = re.compile(rb"^dkim-signature:", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Verified:
    """One DKIM-Signature of a message as dkimpy's verifier saw it."""

    domain: str
    selector: str
    algorithm: str
    ok: bool


def write_key(directory: Path, name: str, algorithm: str = "rsa-sha256") -> tuple[Path, SigningKey]:
    key = generate_key(algorithm)
    path = directory / f"{name}.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key_pem(key))
    return path, key


def publish(dns_server: TestDNSServer, domain: str, selector: str, key: SigningKey) -> None:
    """Serve `<selector>._domainkey.<domain>` TXT, split into 255-byte strings as published."""
    record = key_record(domain, selector, key)
    dns_server.remove(record.name, "TXT")
    dns_server.add(record.name, "TXT", " ".join(f'"{part}"' for part in record.strings()))


def dns_lookup(port: int):
    """dkimpy's `dnsfunc`: TXT over UDP/TCP to the test DNS server on 127.0.0.1:`port`."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    resolver.lifetime = 5

    def get_txt(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode(), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(b"".join(rdata.strings) for rdata in answer)

    return get_txt


def signature_count(message: bytes) -> int:
    header_block = message.split(b"\r\n\r\n", 1)[0]
    return len(_SIGNATURE_FIELD.findall(header_block))


def verify_all_sync(message: bytes, dns_port: int) -> list[Verified]:
    """Verify every DKIM-Signature of `message`, topmost first."""
    results = []
    for idx in range(signature_count(message)):
        verifier = dkim.DKIM(message)
        try:
            ok = bool(verifier.verify(idx=idx, dnsfunc=dns_lookup(dns_port)))
        except dkim.DKIMException:  # what dkim.verify() also reports as False
            ok = False
        fields = verifier.signature_fields
        results.append(
            Verified(fields[b"d"].decode(), fields[b"s"].decode(), fields[b"a"].decode(), ok)
        )
    return results


async def verify_all(message: bytes, dns_port: int) -> list[Verified]:
    """`verify_all_sync` in a thread: the DNS server answers from this test's event loop."""
    return await asyncio.to_thread(verify_all_sync, message, dns_port)
