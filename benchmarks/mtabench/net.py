"""Loopback helpers: free ports and waiting for a server to answer."""

from __future__ import annotations

import asyncio
import socket
import time

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_smtp_banner(host: str, port: int, limit_seconds: float) -> None:
    """Return once a server on host:port sends a 220 greeting; TimeoutError after the limit."""
    deadline = time.monotonic() + limit_seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            async with asyncio.timeout(2.0):
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    line = await reader.readline()
                    if line.startswith(b"220"):
                        writer.write(b"QUIT\r\n")
                        await writer.drain()
                        return
                    last = ConnectionError(f"greeting {line!r}")
                finally:
                    writer.close()
        except (OSError, TimeoutError) as exc:
            last = exc
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no SMTP greeting on {host}:{port} within {limit_seconds:.0f}s: {last}")
