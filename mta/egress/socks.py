"""Connections through a SOCKS5 proxy (RFC 1928, with RFC 1929 username/password), made by
python-socks; the connected socket is handed to the SMTP client (`SessionSettings.connector`).

What a failure means for the source: a proxy that cannot be reached, refuses our credentials
or speaks no SOCKS5 makes the whole source unavailable (`SourceUnavailable`); a proxy that
answers "host unreachable" or "connection refused" for the destination says something about
that host only (an OSError, tried like any connection failure).

`socks5_source_address` (the proxy's public address) is not sent: python-socks speaks plain
CONNECT, and RFC 1928 has no field for the address to send from. The proxy must send from it
by its own configuration (one listener per public address is the usual layout); the value
names the address the source's mail leaves from, in the config and the logs.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Final

from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
from python_socks.async_.asyncio import Proxy

from mta.config import EgressSourceConfig
from mta.delivery.settings import Connector, SourceUnavailable
from mta.units import parse_hostport

# RFC 1928 6 replies about the destination, not the proxy: network/host unreachable,
# connection refused, TTL expired. "General failure" (1) is the proxy's answer to a bind or
# connect it could not make, which is about the destination too for a healthy proxy.
DESTINATION_REPLIES: Final = frozenset({1, 3, 4, 5, 6})


def socks5_connector(config: EgressSourceConfig) -> Connector:
    """A connector that opens each connection through the source's proxy."""
    assert config.socks5_proxy is not None
    host, port = parse_hostport(config.socks5_proxy)
    label = config.socks5_proxy
    local = (config.source_address.strip("[]"), 0) if config.source_address else None

    async def connect(address: str, dest_port: int) -> socket.socket:
        proxy = Proxy(
            ProxyType.SOCKS5,
            host,
            port,
            username=config.socks5_username,
            password=_password(config.socks5_password_file),
            rdns=False,  # the MTA resolved the MX host: the proxy connects to that address
        )
        try:
            return await proxy.connect(address, dest_port, local_addr=local)
        except ProxyConnectionError as error:
            raise SourceUnavailable(f"SOCKS5 proxy {label} unreachable: {error}") from None
        except ProxyTimeoutError:
            raise TimeoutError(f"SOCKS5 proxy {label}: timed out") from None
        except ProxyError as error:
            if error.error_code in DESTINATION_REPLIES:
                raise ConnectionError(f"SOCKS5 proxy {label}: {error}") from None
            raise SourceUnavailable(f"SOCKS5 proxy {label}: {error}") from None

    return connect


def _password(path: Path | None) -> str | None:
    """The first line of the password file (a mounted Secret: re-read each time)."""
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except OSError as error:
        raise SourceUnavailable(f"cannot read socks5_password_file {path}: {error}") from None
