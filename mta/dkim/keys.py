"""DKIM private keys: loaded from files (a mounted Secret), checked, reloaded when they change.

The signature itself is made here, through OpenSSL (`cryptography`): dkimpy's pure-Python RSA
costs ~6.7 ms per signature against ~0.3 ms here, and OpenSSL releases the GIL while it works.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from mta.config import ConfigError, DkimAlgorithm

logger = logging.getLogger(__name__)

MIN_RSA_BITS = 1024  # RFC 8301 3.2: verifiers reject shorter keys
ED25519_SEED_BYTES = 32  # RFC 8032 5.1.5; dkimpy's key files hold the seed in base64
RELOAD_CHECK_SECONDS = 2.0  # how stale a key may be after its file changed
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class DkimKeyError(ConfigError):
    """A key file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A loaded private key and the DKIM algorithm it signs with."""

    algorithm: DkimAlgorithm
    private: PrivateKey

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign the SHA-256 digest of the canonicalized header fields (RFC 6376 3.7)."""
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        # RFC 8463 3: Ed25519 signs the SHA-256 hash itself (PureEdDSA over the digest).
        return self.private.sign(digest)

    def public_value(self) -> str:
        """The `p=` value of the DNS key record (RFC 6376 3.6.1; RFC 8463 4 for Ed25519)."""
        public = self.private.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        else:
            raw = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        return base64.b64encode(raw).decode("ascii")


def parse_key(data: bytes, algorithm: DkimAlgorithm, where: str) -> SigningKey:
    """A key from PEM (PKCS#1 or PKCS#8), or for Ed25519 also dkimpy's base64 seed."""
    private = _pem_or_seed(data, algorithm, where)
    if algorithm == "rsa-sha256" and isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < MIN_RSA_BITS:
            raise DkimKeyError(f"{where}: RSA key of {private.key_size} bits is too short")
        return SigningKey(algorithm, private)
    if algorithm == "ed25519-sha256" and isinstance(private, ed25519.Ed25519PrivateKey):
        return SigningKey(algorithm, private)
    raise DkimKeyError(f"{where}: a {type(private).__name__} does not sign {algorithm}")


def _pem_or_seed(data: bytes, algorithm: DkimAlgorithm, where: str) -> object:
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        seed = _ed25519_seed(data) if algorithm == "ed25519-sha256" else None
        if seed is None:
            raise DkimKeyError(f"{where}: not a usable PEM private key ({exc})") from None
        return seed


def _ed25519_seed(data: bytes) -> ed25519.Ed25519PrivateKey | None:
    try:
        seed = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(seed) != ED25519_SEED_BYTES:
        return None
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed)


def load_key(path: Path, algorithm: DkimAlgorithm) -> SigningKey:
    """Read and parse a key file; DkimKeyError naming the file if it cannot be used."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DkimKeyError(f"{path}: cannot read DKIM key: {exc.strerror or exc}") from None
    return parse_key(data, algorithm, str(path))


def generate_key(algorithm: DkimAlgorithm, bits: int = 2048) -> SigningKey:
    """A new key (for `mta dkim keygen` and tests)."""
    if algorithm == "ed25519-sha256":
        return SigningKey(algorithm, ed25519.Ed25519PrivateKey.generate())
    return SigningKey(algorithm, rsa.generate_private_key(public_exponent=65537, key_size=bits))


def key_pem(key: SigningKey) -> bytes:
    """The private key as PEM: PKCS#1 for RSA (what OpenDKIM and dkimpy read), PKCS#8 else."""
    private_format = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if isinstance(key.private, rsa.RSAPrivateKey)
        else serialization.PrivateFormat.PKCS8
    )
    return key.private.private_bytes(
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    )


def _file_version(path: Path) -> tuple[int, int, int] | None:
    # A Secret volume swaps a symlink: stat() follows it, so a new key shows as a new inode.
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class KeyFile:
    """A key file loaded at startup (errors raise) and reloaded when it changes.

    A reload that fails is logged and the last good key is kept, so a half-written or deleted
    Secret never stops signing. Safe to call from several signing threads.
    """

    def __init__(
        self,
        path: Path,
        algorithm: DkimAlgorithm,
        *,
        check_seconds: float = RELOAD_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.algorithm: DkimAlgorithm = algorithm
        self._check_seconds = check_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._version = _file_version(path)
        self._key = load_key(path, algorithm)
        self._checked = clock()

    def current(self) -> SigningKey:
        """The key to sign with now: reloaded first if the file changed since the last look."""
        now = self._clock()
        if now - self._checked >= self._check_seconds:
            with self._lock:
                if now - self._checked >= self._check_seconds:
                    self._checked = now
                    self._reload_if_changed()
        return self._key

    def _reload_if_changed(self) -> None:
        version = _file_version(self.path)
        if version == self._version:
            return
        self._version = version
        try:
            self._key = load_key(self.path, self.algorithm)
        except DkimKeyError as exc:
            logger.error("DKIM key reload failed, signing with the last good key: %s", exc)
            return
        logger.info("DKIM key %s reloaded", self.path)
