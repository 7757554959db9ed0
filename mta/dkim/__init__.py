"""DKIM signing (RFC 6376; RFC 8463 for Ed25519) at acceptance, keys from files.

Configuration, one table per signing domain; the table's own selector/key_file is its first
key, `[[dkim."<domain>".keys]]` adds more (RSA and Ed25519 side by side, or an old and a new
key during a rotation); every key signs every message of the domain once:

    [dkim."example.com"]
    selector = "rsa2026"
    key_file = "/etc/mta/dkim/example.com/rsa2026.key"   # a Secret mounted as a volume
    algorithm = "rsa-sha256"          # or "ed25519-sha256"
    headers = ["From", "To", "Subject", "Date", "Message-ID"]   # default: DKIM_DEFAULT_HEADERS
    over_sign = false                 # true: h= names each header once more than present
    required = false                  # true: a message that cannot be signed is refused (451)
    canonicalization = "relaxed/relaxed"

    [[dkim."example.com".keys]]
    selector = "ed2026"
    key_file = "/etc/mta/dkim/example.com/ed2026.key"
    algorithm = "ed25519-sha256"

The signing domain is the From header's domain when a table exists for it, else the envelope
sender's; a message for neither is passed on unsigned. Keys are PEM (PKCS#1 or PKCS#8; for
Ed25519 also dkimpy's base64 seed). `build_signer(config.dkim)` loads every key at startup (a
bad one is a `DkimKeyError` naming the file); a changed file is re-read within a few seconds,
and a re-read that fails is logged while the last good key goes on signing.
`DkimSigner.sign(data, sender)` is what the accept path awaits before the spool write.
`mta dkim keygen` (mta/cli_dkim.py) makes keys and prints the DNS records to publish.
"""

from mta.dkim.keys import DkimKeyError, KeyFile, SigningKey, generate_key, load_key
from mta.dkim.records import dns_records, key_record
from mta.dkim.signer import S451_DKIM_FAILED, DkimSigner, DomainSigner, build_signer

__all__ = [
    "S451_DKIM_FAILED",
    "DkimKeyError",
    "DkimSigner",
    "DomainSigner",
    "KeyFile",
    "SigningKey",
    "build_signer",
    "dns_records",
    "generate_key",
    "key_record",
    "load_key",
]
