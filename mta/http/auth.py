"""Who may call what: trusted networks, HTTP Basic users, bearer tokens, admin rights.

KumoMTA's rules: a request without an `Authorization` header is let in when the client
address is in `trusted_networks`, else refused 401 `Missing Authorization header`; a request
with one is checked whatever its address (a trusted client with a wrong password gets 401
`Invalid Authorization`, which catches misconfigured clients early); a header that is neither
`Basic <base64 user:password>` nor `Bearer <token>` gets 400. Liveness and health probes need
nothing. Admin endpoints and `/metrics` need a trusted address or a user in `admin_users` (403
otherwise). File formats: `mta.http.credentials`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import bcrypt
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from mta.config import HttpConfig
from mta.http import credentials
from mta.http.credentials import CredentialStore, SecretKind
from mta.http.errors import HttpError

logger = logging.getLogger(__name__)

REALM_HEADER = {"WWW-Authenticate": 'Basic realm="mta"'}
MISSING = "Missing Authorization header"
INVALID = "Invalid Authorization"
MALFORMED = "Malformed or unsupported Authorization header"
FORBIDDEN = "admin rights required"
CACHE_TTL_SECONDS = 60.0  # as KumoMTA's auth cache
CACHE_MAX_ENTRIES = 1024
BCRYPT_MAX_PASSWORD_BYTES = 72
BCRYPT_CONCURRENCY = 2  # bcrypt is CPU-bound; more threads only slow the event loop down
_DUMMY_DIGEST = hashlib.sha256(b"unknown user").digest()


class Access(enum.Enum):
    PUBLIC = "public"  # health probes
    USER = "user"  # trusted network or any valid credential
    ADMIN = "admin"  # trusted network or a user in admin_users


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: a user or token name, or the trusted client address."""

    name: str
    trusted: bool


IDENTITY = web.RequestKey("identity", Identity)


@dataclass(frozen=True, slots=True)
class Basic:
    user: str
    password: str | None


@dataclass(frozen=True, slots=True)
class Bearer:
    token: str


def parse_authorization(header: str) -> Basic | Bearer:
    """Parse an Authorization header; HttpError 400 when malformed or of another scheme."""
    if not header.isascii():  # RFC 9110 5.5: field values are visible ASCII in practice
        raise HttpError(400, MALFORMED)
    scheme, _, contents = header.strip().partition(" ")
    contents = contents.strip()
    if scheme.lower() == "bearer" and contents:
        return Bearer(contents)
    if scheme.lower() != "basic" or not contents:
        raise HttpError(400, MALFORMED)
    try:
        decoded = base64.b64decode(contents, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise HttpError(400, MALFORMED) from None
    user, sep, password = decoded.partition(":")
    return Basic(user, password if sep else None)


def client_ip(remote: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's address as an IP (IPv4-mapped IPv6 unwrapped), None if not an IP."""
    if remote is None:
        return None
    try:
        address = ipaddress.ip_address(remote.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class VerifiedCache:
    """Recent bcrypt verdicts, keyed by a keyed hash of (user, password, stored hash).

    A client sending the same credentials 100 times a second pays bcrypt once a minute. The
    key is an HMAC with a per-process random key, so the cache holds no password.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._key = secrets.token_bytes(32)
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[bool, float]] = OrderedDict()

    def key(self, user: str, password: str, stored: bytes) -> bytes:
        material = b"\0".join((user.encode(), password.encode(), stored))
        return hmac.new(self._key, material, hashlib.sha256).digest()

    def get(self, key: bytes) -> bool | None:
        entry = self._entries.get(key)
        if entry is None or entry[1] < self._clock():
            self._entries.pop(key, None)
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: bytes, verdict: bool) -> None:
        self._entries[key] = (verdict, self._clock() + CACHE_TTL_SECONDS)
        self._entries.move_to_end(key)
        while len(self._entries) > CACHE_MAX_ENTRIES:
            self._entries.popitem(last=False)


class Authenticator:
    """Decides who a request comes from, per the module's rules."""

    def __init__(self, config: HttpConfig, store: CredentialStore | None = None) -> None:
        self._networks = [ipaddress.ip_network(net) for net in config.trusted_networks]
        self._admins = frozenset(config.admin_users)
        self._store = store or CredentialStore(config)
        self._cache = VerifiedCache()
        self._bcrypt_slots = asyncio.Semaphore(BCRYPT_CONCURRENCY)

    def load(self) -> None:
        """Read the credential files (at start; raises CredentialsError)."""
        self._store.load()

    def is_trusted(self, remote: str | None) -> bool:
        address = client_ip(remote)
        return address is not None and any(address in net for net in self._networks)

    def is_admin(self, identity: Identity) -> bool:
        return identity.trusted or identity.name in self._admins

    async def authenticate(self, request: web.Request) -> Identity:
        """The caller's identity, or HttpError 400/401."""
        header = request.headers.get("Authorization")
        trusted = self.is_trusted(request.remote)
        if header is None:
            if trusted:
                return Identity(f"trusted:{request.remote}", trusted=True)
            raise HttpError(401, MISSING, REALM_HEADER)
        name = await self._verify(parse_authorization(header))
        if name is None:
            raise HttpError(401, INVALID, REALM_HEADER)
        # A trusted client keeps its address's rights when it also sends credentials.
        return Identity(name, trusted=trusted)

    async def _verify(self, given: Basic | Bearer) -> str | None:
        if self._store.claim_reload():
            await asyncio.to_thread(self._store.reload_if_changed)
        if isinstance(given, Bearer):
            return self._verify_token(given.token)
        if given.password is not None and await self._verify_user(given.user, given.password):
            return given.user
        return None

    def _verify_token(self, token: str) -> str | None:
        digest = credentials.sha256(token)
        found = None
        for name, stored in self._store.tokens:  # no early exit: the time taken tells nothing
            if hmac.compare_digest(digest, stored) and found is None:
                found = name
        return found

    async def _verify_user(self, user: str, password: str) -> bool:
        secret = self._store.users.get(user)
        if secret is None:
            hmac.compare_digest(credentials.sha256(password), _DUMMY_DIGEST)
            return False
        if secret.kind is SecretKind.SHA256:
            return secret.matches_digest(password)
        key = self._cache.key(user, password, secret.value)
        verdict = self._cache.get(key)
        if verdict is None:
            async with self._bcrypt_slots:
                verdict = await asyncio.to_thread(_bcrypt_ok, password, secret.value)
            self._cache.put(key, verdict)
        return verdict


def _bcrypt_ok(password: str, hashed: bytes) -> bool:
    # bcrypt uses only the first 72 bytes; bcrypt>=5 raises instead of truncating, but the
    # hashes in users files come from tools (htpasswd, older bcrypt) that truncate.
    try:
        return bcrypt.checkpw(password.encode()[:BCRYPT_MAX_PASSWORD_BYTES], hashed)
    except ValueError:  # a corrupt hash in the file: no password matches it
        return False


def auth_middleware(auth: Authenticator, access_for: Callable[[web.Request], Access]) -> Middleware:
    """Enforce `access_for(request)`; stores the caller's Identity as `request[IDENTITY]`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        access = access_for(request)
        if access is not Access.PUBLIC:
            identity = await auth.authenticate(request)
            if access is Access.ADMIN and not auth.is_admin(identity):
                raise HttpError(403, FORBIDDEN)
            request[IDENTITY] = identity
        return await handler(request)

    return middleware
