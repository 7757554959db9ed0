"""DKIM signing (RFC 6376, RFC 8463 for Ed25519) at acceptance, keys from files.

`build_signer(config.dkim)` loads every key at startup (a bad one is a `DkimKeyError` naming
the file); `DkimSigner.sign(data, sender)` is what the accept path awaits before the spool
write. `mta dkim keygen` (mta/cli_dkim.py) makes keys and the DNS records to publish.
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
