"""The DNS records a signing domain publishes: the DKIM key, and suggested SPF and DMARC."""

from __future__ import annotations

from dataclasses import dataclass

from mta.dkim.keys import SigningKey

MAX_TXT_STRING = 255  # RFC 1035 3.3: one character-string of a TXT record
KEY_TYPES = {"rsa-sha256": "rsa", "ed25519-sha256": "ed25519"}  # RFC 6376 3.6.1, RFC 8463 4


@dataclass(frozen=True, slots=True)
class TxtRecord:
    """One TXT record: its owner name (absolute) and its value (one logical string)."""

    name: str
    value: str
    comment: str

    def strings(self) -> list[str]:
        """The value split into character-strings of at most 255 bytes (RFC 6376 3.6.2.2:
        verifiers join them)."""
        data = self.value
        return [data[i : i + MAX_TXT_STRING] for i in range(0, len(data), MAX_TXT_STRING)]

    def zone_line(self) -> str:
        """`name. IN TXT "..." "..."` as a zone file (and dnspython) reads it."""
        quoted = " ".join(f'"{part}"' for part in self.strings())
        return f"{self.name} IN TXT {quoted}"


def key_record(domain: str, selector: str, key: SigningKey) -> TxtRecord:
    """`<selector>._domainkey.<domain>`: the public key verifiers fetch (RFC 6376 3.6.2.1)."""
    value = f"v=DKIM1; k={KEY_TYPES[key.algorithm]}; p={key.public_value()}"
    return TxtRecord(f"{selector}._domainkey.{domain}.", value, "DKIM public key")


def dns_records(domain: str, selector: str, key: SigningKey) -> list[TxtRecord]:
    """The key record plus a starting SPF (RFC 7208) and DMARC (RFC 7489) record."""
    return [
        key_record(domain, selector, key),
        TxtRecord(
            f"{domain}.",
            "v=spf1 mx -all",
            "suggested SPF: add ip4:/ip6: terms for the nodes' egress addresses",
        ),
        TxtRecord(
            f"_dmarc.{domain}.",
            f"v=DMARC1; p=none; adkim=r; aspf=r; rua=mailto:dmarc-reports@{domain}",
            "suggested DMARC: p=none while reports confirm alignment, then quarantine/reject",
        ),
    ]
