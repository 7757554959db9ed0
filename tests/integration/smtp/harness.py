"""Test helpers for the SMTP front end: a recording accept path and event log, a raw client."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mta.config import SmtpConfig
from mta.replies import Reply
from mta.smtp import Inbound, SmtpServer

HOSTNAME = "mx.test"
TIMEOUT = 5.0


class RecordingAccept:
    """An AcceptPath that keeps what it is given; can be made unhealthy or failing."""

    def __init__(self) -> None:
        self.inbounds: list[Inbound] = []
        self.unhealthy: str | None = None
        self.error: Exception | None = None

    def unhealthy_reason(self) -> str | None:
        return self.unhealthy

    async def accept(self, inbound: Inbound) -> str:
        if self.error is not None:
            raise self.error
        self.inbounds.append(inbound)
        return f"msg{len(self.inbounds)}"

    async def recipient_problem(self, recipient: str) -> Reply | None:
        return None


@dataclass
class RecordingEvents:
    """An EventLog that keeps each rejection as a dict."""

    rejections: list[dict[str, Any]] = field(default_factory=list)

    def rejection(
        self,
        *,
        sender: str | None,
        recipient: str | None,
        reply: Reply,
        command: str,
        peer_address: str,
    ) -> None:
        self.rejections.append(
            {
                "sender": sender,
                "recipient": recipient,
                "reply": reply,
                "command": command,
                "peer_address": peer_address,
            }
        )


@dataclass
class Harness:
    server: SmtpServer
    accept: RecordingAccept
    events: RecordingEvents
    port: int


class RawClient:
    """Writes exact bytes and reads whole replies (multi-line ones joined)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, source: str = "127.0.0.1") -> RawClient:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=(source, 0), limit=2**20
        )
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self) -> str:
        """One reply; its lines joined with "\\n". "" when the server closed."""
        lines: list[str] = []
        async with asyncio.timeout(TIMEOUT):
            while True:
                line = await self.reader.readline()
                if not line:
                    return "\n".join(lines)
                lines.append(line.decode().rstrip("\r\n"))
                if line[3:4] != b"-":
                    return "\n".join(lines)

    async def command(self, data: bytes) -> str:
        await self.send(data)
        return await self.reply()

    async def start_mail(
        self, sender: bytes = b"<a@example.org>", recipient: bytes = b"<b@example.com>"
    ) -> None:
        """Greeting, EHLO, MAIL, RCPT, DATA, each answered as a well-behaved session expects."""
        assert (await self.reply()).startswith("220 ")
        assert (await self.command(b"EHLO client.test\r\n")).startswith("250-")
        assert (await self.command(b"MAIL FROM:" + sender + b"\r\n")).startswith("250 ")
        assert (await self.command(b"RCPT TO:" + recipient + b"\r\n")).startswith("250 ")
        assert (await self.command(b"DATA\r\n")).startswith("354 ")

    async def at_eof(self) -> bool:
        """True once the server has closed the connection (after any unread replies)."""
        async with asyncio.timeout(TIMEOUT):
            rest = await self.reader.read()
        return rest == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


StartServer = Callable[..., Awaitable[Harness]]
ConnectClient = Callable[..., Awaitable[RawClient]]


async def new_harness(**overrides: Any) -> Harness:
    """A started server on 127.0.0.1, port 0, with SmtpConfig fields from `overrides`."""
    config = dataclasses.replace(SmtpConfig(listen=("127.0.0.1:0",)), **overrides)
    accept, events = RecordingAccept(), RecordingEvents()
    server = SmtpServer(config, hostname=HOSTNAME, accept=accept, events=events)
    await server.start()
    return Harness(server, accept, events, port=server.addresses[0][1])
