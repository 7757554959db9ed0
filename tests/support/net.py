"""Loopback addressing helpers: free ports and distinct 127.x.y.z addresses."""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import socket
import threading

_FIRST_ADDRESS = int(ipaddress.IPv4Address("127.0.0.10"))
_counter = itertools.count()
_lock = threading.Lock()


def free_port(*hosts: str) -> int:
    """A TCP port number currently free on every one of ``hosts`` (default 127.0.0.1).

    The port is released before returning, so bind it soon. Binding the sockets
    at the same time means the number is free on all addresses at once, which is
    what a test needs to put sinks for mx1 and mx2 on one port number.
    """
    addresses = hosts or ("127.0.0.1",)
    for _ in range(50):
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            first.bind((addresses[0], 0))
            port: int = first.getsockname()[1]
            try:
                for host in addresses[1:]:
                    other = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    other.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no port free on all of {addresses}")


def unused_loopback_address() -> str:
    """A 127.0.0.0/8 address not handed out before in this process.

    Starts at 127.0.0.10 and counts up, skipping .0 and .255 in the last octet,
    so each call gives a fresh address (Linux routes all of 127/8 to ``lo``).
    """
    while True:
        with _lock:
            candidate = ipaddress.IPv4Address(_FIRST_ADDRESS + next(_counter))
        if candidate not in ipaddress.IPv4Network("127.0.0.0/8"):
            raise RuntimeError("ran out of loopback addresses")
        if candidate.packed[-1] not in (0, 255):
            return str(candidate)
