"""A reply injected before the TLS handshake is never read as a reply after STARTTLS
(the STARTTLS response-injection class that aiosmtplib 5.1.2 closed; RFC 3207 4.2 says
nothing from before TLS may be used after it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib.metadata import version

import pytest

from mta.config import RouteConfig
from tests.integration.delivery.delivery_support import EngineFactory, job
from tests.support.tls import make_self_signed_context

POST_TLS_EHLO = b"250-mx.real\r\n250 8BITMIME\r\n"


class InjectingServer:
    """Answers STARTTLS with "220 ready" plus a forged "250 injected" in the same write,
    then does TLS and plays an ordinary server, recording the commands it gets."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self._server: asyncio.Server | None = None
        self._context = make_self_signed_context("mx.injecting.test")

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def __aenter__(self) -> InjectingServer:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            writer.write(b"220 mx.injecting.test ESMTP\r\n")
            await self._command(reader)  # EHLO
            writer.write(b"250-mx.injecting.test\r\n250 STARTTLS\r\n")
            await self._command(reader)  # STARTTLS
            writer.write(b"220 ready\r\n250 injected\r\n")
            await writer.drain()
            await writer.start_tls(self._context)
            await self._serve(reader, writer)
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        replies = {"EHLO": POST_TLS_EHLO, "MAIL": b"250 ok\r\n", "RCPT": b"250 ok\r\n"}
        while True:
            command = await self._command(reader)
            verb = command.split(" ", 1)[0].upper()
            if verb == "DATA":
                writer.write(b"354 go on\r\n")
                await reader.readuntil(b"\r\n.\r\n")
                writer.write(b"250 2.0.0 queued-real\r\n")
            elif verb == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(replies.get(verb, b"502 5.5.2 unknown\r\n"))
            await writer.drain()

    async def _command(self, reader: asyncio.StreamReader) -> str:
        line = (await reader.readuntil(b"\r\n")).decode().rstrip("\r\n")
        self.commands.append(line)
        return line


@pytest.fixture
async def injecting_server() -> AsyncIterator[InjectingServer]:
    async with InjectingServer() as server:
        yield server


def test_aiosmtplib_is_a_fixed_version() -> None:
    major, minor, patch = (int(part) for part in version("aiosmtplib").split(".")[:3])
    assert (major, minor, patch) >= (5, 1, 2)


async def test_a_reply_injected_before_the_handshake_is_ignored(
    injecting_server: InjectingServer, make_engine: EngineFactory
) -> None:
    engine = make_engine(25, enable_tls="RequiredInsecure")
    route = RouteConfig(relay=f"127.0.0.1:{injecting_server.port}")
    site = await engine.site_for("injecting.test", route)

    outcome = (await engine.deliver(site, job("a@injecting.test")))["a@injecting.test"]

    # Had "250 injected" been taken as the reply to the EHLO after TLS, every later reply
    # would be one step behind: MAIL would read EHLO's, ... and DATA would get "250 ok".
    assert outcome.kind == "delivered", outcome.reply
    assert "queued-real" in outcome.reply.text
    assert outcome.tls_protocol_version is not None
    assert injecting_server.commands[:3] == ["EHLO mta.test", "STARTTLS", "EHLO mta.test"]
