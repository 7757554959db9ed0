"""Who may talk to the TSA daemon: peers in trusted networks (KumoMTA's
``trusted_hosts``, loopback by default), or any peer with ``Authorization: Bearer
<token>`` for a token listed in the tokens file (one per line; blank lines and ``#``
comments ignored). Everything else gets 401.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

logger = logging.getLogger("shaping.tsa")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BEARER: Final = "bearer "


def read_tokens(path: Path) -> frozenset[str]:
    """The tokens in ``path``; raises OSError when it cannot be read."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


class Access:
    """The access rule; ``tokens`` may be replaced at run time (file reloads)."""

    def __init__(self, networks: Iterable[str], tokens: frozenset[str] = frozenset()) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks
        )
        self.tokens = tokens

    def allows(self, peer: str | None, authorization: str | None) -> bool:
        return self._trusted(peer) or self._token_ok(authorization)

    def _trusted(self, peer: str | None) -> bool:
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def _token_ok(self, authorization: str | None) -> bool:
        if not authorization or not authorization.lower().startswith(BEARER):
            return False
        offered = authorization[len(BEARER) :].strip().encode()
        # Compare against every token in constant time: no early exit that leaks a prefix.
        matches = [hmac.compare_digest(offered, token.encode()) for token in self.tokens]
        return any(matches)

    def middleware(self) -> Middleware:
        """An aiohttp middleware answering 401 to requests this rule refuses."""

        @web.middleware
        async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not self.allows(request.remote, request.headers.get("Authorization")):
                logger.info("TSA: refused %s %s from %s", request.method, request.path,
                            request.remote)  # fmt: skip
                raise web.HTTPUnauthorized(
                    text="unauthorized: not a trusted network and no valid bearer token\n",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return await handler(request)

        return check
