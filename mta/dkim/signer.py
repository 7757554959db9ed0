"""The node's DKIM signer: picks the signing domain, signs with each of its keys.

Signing happens once, at acceptance (the accept path calls `DkimSigner.sign` before the spool
write), so retries never re-sign and restarts never double-sign. The private-key operation
(~0.35 ms for RSA-2048) runs in a small thread pool: OpenSSL releases the GIL, so it uses the
other core while the event loop goes on. Canonicalizing and hashing a small message (~0.1 ms of
Python) stays on the loop: done in the pool it would hold the GIL there and make the loop wait
for it at every socket call (measured: ~1 ms more CPU per message); a large message (over
INLINE_PREPARE_BYTES) is done entirely in the pool so the loop never stalls on it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import getaddresses

from mta.config import DkimDomainConfig
from mta.dkim.keys import KeyFile, SigningKey
from mta.dkim.sign import ParsedMessage, SignParams, Unsigned, prepare
from mta.replies import Reply, TransientError

logger = logging.getLogger(__name__)

S451_DKIM_FAILED = Reply(451, "4.3.0", "DKIM signing failed, try again later")
MAX_WORKERS = 4  # more threads than cores only queue behind the GIL
INLINE_PREPARE_BYTES = 32 * 1024  # larger messages are canonicalized in the pool
Pending = tuple[Unsigned, SigningKey]


@dataclass(frozen=True, slots=True)
class DomainSigner:
    """Every key of one signing domain, and that domain's policy."""

    keys: tuple[tuple[SignParams, KeyFile], ...]
    required: bool

    @classmethod
    def from_config(cls, domain: str, table: DkimDomainConfig) -> DomainSigner:
        """Load the domain's keys now; DkimKeyError (a ConfigError) names a bad file."""
        keys = []
        for key in table.signing_keys():
            assert key.key_file is not None  # config validation
            params = SignParams(
                a_label(domain),
                key.selector,
                table.headers,
                table.over_sign,
                table.canonicalization,
            )
            keys.append((params, KeyFile(key.key_file, key.algorithm)))
        return cls(tuple(keys), table.required)

    def prepare(self, message: ParsedMessage, timestamp: int) -> list[Pending]:
        """One unsigned field per key, in the configured order, with the key to sign it."""
        pending = []
        for params, key_file in self.keys:
            key = key_file.current()
            pending.append((prepare(message, params, key.algorithm, timestamp), key))
        return pending


def sign_pending(pending: list[Pending]) -> bytes:
    """The DKIM-Signature fields: the private-key operations (OpenSSL, GIL released)."""
    return b"".join(
        unsigned.complete(key.sign_digest(unsigned.digest)) for unsigned, key in pending
    )


class DkimSigner:
    """Signs accepted messages for the configured domains (`[dkim."<domain>"]`)."""

    def __init__(
        self,
        domains: Mapping[str, DomainSigner],
        *,
        workers: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._domains = {a_label(domain): signer for domain, signer in domains.items()}
        self._clock = clock
        self._executor = ThreadPoolExecutor(
            max_workers=workers or min(MAX_WORKERS, os.cpu_count() or 1),
            thread_name_prefix="dkim",
        )

    async def sign(self, data: bytes, sender: str) -> bytes:
        """`data` with its DKIM-Signature fields prepended (or unchanged if no domain of ours).

        Raises TransientError (451) when signing fails for a domain with `required = true`;
        other failures are logged and the message goes on unsigned.
        """
        loop = asyncio.get_running_loop()
        if len(data) > INLINE_PREPARE_BYTES:
            return await loop.run_in_executor(self._executor, self.sign_now, data, sender)
        prepared = self._prepare(data, sender)
        if prepared is None:
            return data
        domain, pending = prepared
        try:
            fields = await loop.run_in_executor(self._executor, sign_pending, pending)
        except Exception as exc:  # required means never unsigned: refuse on any failure
            return self._failed(domain, data, exc)
        return fields + data

    def sign_now(self, data: bytes, sender: str) -> bytes:
        """What `sign` does, all of it in the calling thread."""
        prepared = self._prepare(data, sender)
        if prepared is None:
            return data
        domain, pending = prepared
        try:
            return sign_pending(pending) + data
        except Exception as exc:
            return self._failed(domain, data, exc)

    def _prepare(self, data: bytes, sender: str) -> tuple[str, list[Pending]] | None:
        """The signing domain and its unsigned fields; None to pass the message unsigned."""
        try:
            message = ParsedMessage(data)
        except Exception as exc:  # dkimpy raises its own and builtin errors on bad input
            self._failed(self._by_address(sender), data, exc)
            return None
        domain = self._signing_domain(message, sender)
        if domain is None:
            return None
        try:
            return domain, self._domains[domain].prepare(message, int(self._clock()))
        except Exception as exc:
            self._failed(domain, data, exc)
            return None

    def close(self) -> None:
        """Stop the worker threads (after the accept path has stopped)."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _signing_domain(self, message: ParsedMessage, sender: str) -> str | None:
        """The From header's domain if we sign for it, else the envelope sender's."""
        from_value = message.first(b"from")
        if from_value is not None:
            for _name, address in getaddresses([from_value.decode("utf-8", "replace")]):
                domain = self._by_address(address)
                if domain is not None:
                    return domain
        return self._by_address(sender)

    def _by_address(self, address: str) -> str | None:
        try:
            domain = a_label(address.rpartition("@")[2])
        except UnicodeError:
            return None
        return domain if domain in self._domains else None

    def _failed(self, domain: str | None, data: bytes, exc: Exception) -> bytes:
        if domain is None:
            return data
        if self._domains[domain].required:
            logger.error("DKIM signing for %s failed, message refused: %r", domain, exc)
            raise TransientError(S451_DKIM_FAILED, f"DKIM signing for {domain} failed")
        logger.warning("DKIM signing for %s failed, message sent unsigned: %r", domain, exc)
        return data


def a_label(domain: str) -> str:
    """The lowercase ASCII form of a domain (d= is ASCII: RFC 6376 3.5, IDNA A-labels)."""
    domain = domain.strip().rstrip(".").lower()
    return domain if domain.isascii() else domain.encode("idna").decode("ascii")


def build_signer(dkim: Mapping[str, DkimDomainConfig]) -> DkimSigner | None:
    """The node's signer, keys loaded now (DkimKeyError names a bad file); None if no domain."""
    if not dkim:
        return None
    return DkimSigner({domain: DomainSigner.from_config(domain, t) for domain, t in dkim.items()})
