"""A small SOCKS5 proxy for tests (RFC 1928 CONNECT only, RFC 1929 username/password).

It records what it was asked, and sends from `bind_address` (a 127.0.0.x address standing for
the proxy's public IP), so a sink behind it sees that address::

    async with Socks5Server(users={"mta": "pw"}, bind_address="127.0.0.3") as proxy:
        ...  # proxy.port; proxy.connects == [("127.0.0.1", 2525), ...]

`stop()` closes the listener and every relayed connection; `start()` again listens on the
same port (a proxy that is down for a while).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
from typing import Final

VERSION: Final = 5
NO_AUTH, USER_PASS, NO_METHOD = 0x00, 0x02, 0xFF
CONNECT: Final = 1
SUCCEEDED, REFUSED, NOT_SUPPORTED = 0x00, 0x05, 0x07
IPV4, DOMAIN, IPV6 = 1, 3, 4


class Socks5Server:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        users: dict[str, str] | None = None,
        bind_address: str | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self.users = users
        self.bind_address = bind_address
        self.connects: list[tuple[str, int]] = []  # destinations of accepted CONNECTs
        self.clients: list[str] = []  # client addresses, one per CONNECT
        self.logins: list[tuple[str, bool]] = []  # username, accepted
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("Socks5Server is not started")
        return self._port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> Socks5Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if await self._negotiate(reader, writer):
                await self._connect(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def _negotiate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        wanted = NO_AUTH if self.users is None else USER_PASS
        if version != VERSION or wanted not in methods:
            writer.write(bytes([VERSION, NO_METHOD]))
            return False
        writer.write(bytes([VERSION, wanted]))
        return wanted == NO_AUTH or await self._login(reader, writer)

    async def _login(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """RFC 1929 2: VER=1, ULEN, UNAME, PLEN, PASSWD; status 0 is success."""
        assert self.users is not None
        _, length = await reader.readexactly(2)
        user = (await reader.readexactly(length)).decode()
        (length,) = await reader.readexactly(1)
        password = (await reader.readexactly(length)).decode()
        ok = self.users.get(user) == password
        self.logins.append((user, ok))
        writer.write(bytes([1, 0 if ok else 1]))
        return ok

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, command, _, kind = await reader.readexactly(4)
        host = await _read_address(reader, kind)
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if command != CONNECT:
            writer.write(_reply(NOT_SUPPORTED))
            return
        local = (self.bind_address, 0) if self.bind_address else None
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port, local_addr=local)
        except OSError:
            writer.write(_reply(REFUSED))
            return
        self.connects.append((host, port))
        self.clients.append(writer.get_extra_info("peername")[0])
        self._writers.add(up_writer)
        writer.write(_reply(SUCCEEDED))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers.discard(up_writer)
            up_writer.close()


async def _read_address(reader: asyncio.StreamReader, kind: int) -> str:
    if kind == IPV4:
        return str(ipaddress.IPv4Address(await reader.readexactly(4)))
    if kind == IPV6:
        return str(ipaddress.IPv6Address(await reader.readexactly(16)))
    (length,) = await reader.readexactly(1)
    return (await reader.readexactly(length)).decode()


def _reply(status: int) -> bytes:
    return bytes([VERSION, status, 0, IPV4]) + socket.inet_aton("0.0.0.0") + b"\0\0"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        if writer.can_write_eof():
            writer.write_eof()
