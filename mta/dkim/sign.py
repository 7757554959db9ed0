"""One DKIM-Signature header field for a message (RFC 6376 5), without I/O.

dkimpy parses the message, canonicalizes (RFC 6376 3.4), selects and hashes the signed header
fields (5.4, 3.7) and folds the tag list; the signature is made by `SigningKey` through OpenSSL.
The b= tag is last and empty while hashing, as RFC 6376 3.7 step 2 has the verifier see it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import dkim  # type: ignore[import-untyped]
from dkim.canonicalization import CanonicalizationPolicy  # type: ignore[import-untyped]

from mta.dkim.keys import SigningKey

HEADER_NAME = b"DKIM-Signature"
B64_LINE = 76  # b= folded into lines this long: FWS is ignored in b= (RFC 6376 3.5)
CRLF = b"\r\n"


@dataclass(frozen=True, slots=True)
class SignParams:
    """What one signature says: d=, s=, which headers, and how they are canonicalized."""

    domain: str
    selector: str
    headers: Sequence[str]
    over_sign: bool = False
    canonicalization: str = "relaxed/relaxed"


def signed_header_names(
    present: Sequence[bytes], wanted: Sequence[str], over_sign: bool
) -> list[bytes]:
    """The h= list: each wanted header as often as present, plus one more with `over_sign`
    (an extra, empty instance: anyone adding that header later breaks the signature,
    RFC 6376 8.15)."""
    counts = Counter(name.lower() for name in present)
    names: list[bytes] = []
    for name in _lowered(tuple(wanted)):
        names.extend([name] * (counts[name] + (1 if over_sign else 0)))
    return names


@functools.lru_cache(maxsize=64)  # one entry per configured headers list
def _lowered(wanted: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(dict.fromkeys(header.lower().encode("ascii") for header in wanted))


class ParsedMessage:
    """A message split once into dkimpy's header list and body, for one or more signatures."""

    def __init__(self, message: bytes) -> None:
        """Raises dkim.DKIMException when the header block cannot be parsed.

        `message` has CRLF line endings (fixed at the door), so only the header block goes
        through dkimpy's line splitting; the body is a slice (a 100 KB body split into lines
        and joined again would cost ~2 ms).
        """
        head, body = _split(message)
        self.headers, _ = dkim.rfc822_parse(head + CRLF)
        self.body: bytes = body
        self._body_hashes: dict[str, bytes] = {}

    def first(self, name: bytes) -> bytes | None:
        """The first value of header `name` (any case), unfolded lines kept as they are."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return bytes(value)
        return None

    def body_hash(self, policy: CanonicalizationPolicy) -> bytes:
        c_value: str = policy.to_c_value().decode("ascii")
        if c_value not in self._body_hashes:
            canonical = policy.canonicalize_body(self.body)
            self._body_hashes[c_value] = base64.b64encode(hashlib.sha256(canonical).digest())
        return self._body_hashes[c_value]


@dataclass(frozen=True, slots=True)
class Unsigned:
    """A DKIM-Signature field up to its empty b= tag, and the header hash to sign."""

    value: bytes
    digest: bytes

    def complete(self, signature: bytes) -> bytes:
        """The whole `DKIM-Signature: ...\r\n` field, b= holding `signature`."""
        return HEADER_NAME + b": " + self.value + _fold_b64(base64.b64encode(signature)) + CRLF


def prepare(message: ParsedMessage, params: SignParams, algorithm: str, timestamp: int) -> Unsigned:
    """Everything but the private-key operation: canonicalize, build the tags, hash."""
    policy = CanonicalizationPolicy.from_c_value(params.canonicalization.encode("ascii"))
    present = [name for name, _ in message.headers]
    names = signed_header_names(present, params.headers, params.over_sign)
    tags = [
        (b"v", b"1"),
        (b"a", algorithm.encode("ascii")),
        (b"c", policy.to_c_value()),
        (b"d", params.domain.encode("ascii")),
        (b"s", params.selector.encode("ascii")),
        (b"t", str(timestamp).encode("ascii")),
        (b"h", b" : ".join(names)),  # spaces around ":" let the fold break the list
        (b"bh", message.body_hash(policy)),
        (b"b", b""),
    ]
    value: bytes = dkim.fold(b"; ".join(b"=".join(tag) for tag in tags), namelen=len(HEADER_NAME))
    hasher = hashlib.sha256()
    # Only the fields named in h= are canonicalized (Received and the like can be long);
    # dropping the others keeps dkimpy's bottom-up choice among repeated fields the same.
    signed = set(names)
    canonical = policy.canonicalize_headers([h for h in message.headers if h[0].lower() in signed])
    dkim.hash_headers(hasher, policy, canonical, names, (HEADER_NAME, b" " + value), None)
    return Unsigned(value, hasher.digest())


def signature_header(
    message: ParsedMessage, params: SignParams, key: SigningKey, timestamp: int
) -> bytes:
    """The `DKIM-Signature: ...\r\n` field to prepend to the message."""
    unsigned = prepare(message, params, key.algorithm, timestamp)
    return unsigned.complete(key.sign_digest(unsigned.digest))


def _split(message: bytes) -> tuple[bytes, bytes]:
    """(header block with its last CRLF, body) at the first empty line (RFC 5322 2.1)."""
    if message.startswith(CRLF):
        return b"", message[2:]
    end = message.find(CRLF + CRLF)
    if end < 0:
        return message, b""
    return message[: end + 2], message[end + 4 :]


def _fold_b64(data: bytes) -> bytes:
    return b"".join(CRLF + b" " + data[i : i + B64_LINE] for i in range(0, len(data), B64_LINE))
