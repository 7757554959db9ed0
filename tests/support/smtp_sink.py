"""A scriptable SMTP sink: a real aiosmtpd server on loopback whose replies tests choose.

Typical use::

    async with ScriptedSink(data_replies=["451 4.3.0 try again"]) as sink:
        ...  # first DATA gets 451, the next ones 250
        await sink.wait_for_messages(1)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, AnyStr, Final, cast

from aiosmtpd.smtp import SMTP, Envelope, Session

STAGES: Final = frozenset({"CONNECT", "EHLO", "MAIL", "RCPT", "DATA"})
"""Points where ``drop_after`` and ``stall`` can act.

``CONNECT`` is before the greeting; ``EHLO``/``MAIL``/``RCPT`` when that command
arrives (before its reply); ``DATA`` once the message data has been received,
before the reply to the final dot.
"""


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the sink accepted (DATA answered 250).

    ``mail_from`` is ``""`` for the null reverse-path ``MAIL FROM:<>`` (aiosmtpd
    itself reports ``"<>"``); ``rcpt_tos`` holds only the accepted recipients;
    ``peer`` is the client's IP address (no port); ``ehlo`` is the name the client
    gave in EHLO/HELO; ``data`` is the message as received, CRLF line endings,
    dot-stuffing removed.
    """

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: str
    tls: bool
    ehlo: str


@dataclass(eq=False)
class _Script:
    """What the sink answers; every field is also an attribute of ScriptedSink."""

    greeting: str | None = None
    greetings: list[str] = field(default_factory=list)
    ehlo_reply: str | None = None
    ehlo_extensions_hide: set[str] = field(default_factory=set)
    mail_reply: str | None = None
    mail_replies: list[str] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    rcpt_replies_once: dict[str, list[str]] = field(default_factory=dict)
    data_reply: str | None = None
    data_replies: list[str] = field(default_factory=list)
    drop_after: str | None = None
    stall: str | None = None
    stall_seconds: float = 30.0
    starttls: ssl.SSLContext | None = None
    require_starttls: bool = False


class ScriptedSink(_Script):
    """An SMTP server on ``host:port`` (port 0 = any) that records what it accepts.

    Scripting attributes (set in the constructor or any time later; they are
    read when each command arrives, ``starttls``/``require_starttls`` when each
    connection is accepted):

    - ``greeting``: banner instead of ``220 ...``. A 4xx banner is sent and the
      connection closed; a 5xx banner (``554 no service``) is followed by 503 to
      every command until QUIT (RFC 5321 3.1). ``greetings`` is a FIFO of
      one-shot banners, one per connection, used before ``greeting``.
    - ``ehlo_reply``: reply to EHLO instead of the extension list (e.g. ``"502 5.5.1
      no"`` to force HELO). ``ehlo_extensions_hide``: keywords withheld from
      EHLO (e.g. ``{"PIPELINING", "STARTTLS", "SIZE"}``).
    - ``mail_reply`` / ``mail_replies`` (one-shot FIFO, used first): MAIL reply.
    - ``rcpt_replies``: lowercase address -> reply; ``rcpt_replies_once``:
      lowercase address -> FIFO of one-shot replies, used first. Default 250.
    - ``data_reply`` / ``data_replies`` (one-shot FIFO, used first): reply after
      the final dot. Only a 250 here records a message.
    - Any reply starting with ``421`` is sent and then the connection is closed.
    - ``drop_after``: one of STAGES; the TCP connection is cut there, no reply.
    - ``stall`` (one of STAGES) and ``stall_seconds``: go silent there until the
      time passes (then carry on normally) or the sink stops.
    - ``starttls``: server SSLContext; advertises and supports STARTTLS.
      ``require_starttls``: refuse mail commands before STARTTLS (530).

    The EHLO reply advertises SIZE, 8BITMIME, SMTPUTF8, PIPELINING and STARTTLS
    (when ``starttls`` is set); never AUTH.

    Records: ``messages`` (ReceivedMessage list), ``connections`` (TCP
    connections accepted), ``transactions`` (MAIL commands received) and
    ``commands`` (every command line, e.g. ``"MAIL FROM:<a@b>"``, in order).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        hostname: str = "sink.test",
        data_size_limit: int | None = 2**25,
        **script: Any,
    ) -> None:
        super().__init__(**script)
        self._bind_host = host
        self._bind_port = port
        self.hostname = hostname
        self.data_size_limit = data_size_limit
        self.messages: list[ReceivedMessage] = []
        self.connections = 0
        self.transactions = 0
        self.commands: list[str] = []
        self._server: asyncio.Server | None = None
        self._port = 0
        self._open: set[_SinkSMTP] = set()
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._bind_host

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("ScriptedSink is not started")
        return self._port

    async def start(self) -> None:
        for stage in (self.drop_after, self.stall):
            if stage is not None and stage not in STAGES:
                raise ValueError(f"unknown stage {stage!r}; use one of {sorted(STAGES)}")
        loop = asyncio.get_running_loop()
        self._stopping.clear()
        self._server = await loop.create_server(
            lambda: _SinkSMTP(self, loop),
            self._bind_host,
            self._bind_port,
            family=socket.AF_INET,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and cut every open connection (also ends any stall)."""
        self._stopping.set()
        if self._server is None:
            return
        self._server.close()
        tasks = []
        for protocol in list(self._open):
            protocol.abort_connection()
            if protocol.handler_task is not None:
                tasks.append(protocol.handler_task)
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        # Let connection_lost callbacks scheduled by the aborts run now.
        await asyncio.sleep(0)
        self._server = None

    async def __aenter__(self) -> ScriptedSink:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- waiting -------------------------------------------------------------------

    async def wait_for_messages(
        self,
        n: int,
        timeout: float = 10,
    ) -> list[ReceivedMessage]:
        """Wait until at least ``n`` messages are recorded; return them all."""
        await self._wait(lambda: len(self.messages) >= n, timeout, f"{n} message(s)")
        return list(self.messages)

    async def wait_for_connections(self, n: int, timeout: float = 10) -> None:
        """Wait until at least ``n`` TCP connections have been accepted."""
        await self._wait(lambda: self.connections >= n, timeout, f"{n} connection(s)")

    async def _wait(self, done: Callable[[], bool], limit: float, what: str) -> None:
        try:
            async with asyncio.timeout(limit):
                while not done():
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"sink {self._bind_host}:{self._port} waited {limit}s for {what}; has "
                f"{len(self.messages)} message(s), {self.connections} connection(s), "
                f"{self.transactions} MAIL command(s); commands: {self.commands[-20:]}"
            ) from None

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- used by the protocol --------------------------------------------------------

    def _connected(self, protocol: _SinkSMTP) -> None:
        self._open.add(protocol)
        self.connections += 1
        self._notify()

    def _disconnected(self, protocol: _SinkSMTP) -> None:
        self._open.discard(protocol)

    def _record(self, message: ReceivedMessage) -> None:
        self.messages.append(message)
        self._notify()

    async def _stall_if(self, stage: str) -> None:
        if self.stall == stage:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.stall_seconds):
                    await self._stopping.wait()

    def _next_greeting(self) -> str | None:
        return self.greetings.pop(0) if self.greetings else self.greeting


class _SinkSMTP(SMTP):
    """aiosmtpd's SMTP protocol with the hooks that play a ScriptedSink's script."""

    def __init__(self, sink: ScriptedSink, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(
            _Handler(sink),
            hostname=sink.hostname,
            ident="ScriptedSink",
            data_size_limit=sink.data_size_limit,
            enable_SMTPUTF8=True,
            tls_context=sink.starttls,
            require_starttls=sink.require_starttls,
            loop=loop,
        )
        self.sink = sink
        self._counted = False
        self._banner: str | None = None

    @property
    def handler_task(self) -> asyncio.Task[None] | None:
        task: asyncio.Task[None] | None = self._handler_coroutine
        return task

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self._counted:  # STARTTLS calls this again with the TLS transport
            self._counted = True
            if self._handler_coroutine is not None:
                self._handler_coroutine.add_done_callback(_retrieve_outcome)
            self.sink._connected(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.sink._disconnected(self)
        super().connection_lost(error)

    def abort_connection(self) -> None:
        """Cut the TCP connection at once, without any further byte."""
        for transport in (self._original_transport, self.transport):
            if transport is not None:
                cast(asyncio.Transport, transport).abort()

    async def drop_and_wait(self) -> None:
        """Abort the connection and wait for aiosmtpd to cancel this session."""
        self.abort_connection()
        await asyncio.Event().wait()  # cancelled by connection_lost

    async def reply_and_close(self, reply: str) -> None:
        """Send ``reply``, close the connection, wait for aiosmtpd to cancel the session."""
        await self.push(reply)
        self.close_transport()
        await asyncio.Event().wait()  # cancelled by connection_lost

    def close_transport(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def _handle_client(self) -> None:
        sink = self.sink
        if sink.drop_after == "CONNECT":
            await self.drop_and_wait()
        await sink._stall_if("CONNECT")
        greeting = sink._next_greeting()
        if greeting is None or greeting.startswith("2"):
            self._banner = greeting
            await super()._handle_client()
            return
        await self.push(greeting)
        if not greeting.startswith("5"):
            self.close_transport()
            return
        while self.transport is not None:
            line = await self._reader.readline()
            if not line:
                return
            if line.strip().upper() == b"QUIT":
                await self.push("221 Bye")
                self.close_transport()
                return
            await self.push("503 5.5.1 Bad sequence of commands")

    async def push(self, status: AnyStr) -> None:
        banner, self._banner = self._banner, None
        if banner is not None:  # the first push is the greeting: replace it
            await super().push(banner)
        else:
            await super().push(status)


def _peer_ip(peer: object) -> str:
    # aiosmtpd annotates Session.peer as str, but it holds the socket's peername tuple.
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


def _retrieve_outcome(task: asyncio.Task[None]) -> None:
    # A client that vanishes mid-reply ends aiosmtpd's session task with
    # ConnectionResetError; fetch it so asyncio does not log it as never retrieved.
    if not task.cancelled():
        task.exception()


class _Handler:
    """aiosmtpd handler hooks; each returns the reply the script asks for."""

    def __init__(self, sink: ScriptedSink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self,
        server: _SinkSMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        sink = self.sink
        sink.commands.append(f"EHLO {hostname}")
        if sink.drop_after == "EHLO":
            await server.drop_and_wait()
        await sink._stall_if("EHLO")
        if sink.ehlo_reply is not None:
            if sink.ehlo_reply.startswith("421"):
                await server.reply_and_close(sink.ehlo_reply)
            return [sink.ehlo_reply]
        # aiosmtpd leaves this to a 5-argument EHLO hook.
        session.host_name = hostname
        first, *extensions = (line[4:] for line in responses)
        extensions.insert(-1, "PIPELINING")  # aiosmtpd reads commands in order anyway
        hidden = {keyword.upper() for keyword in sink.ehlo_extensions_hide}
        kept = [
            ext
            for ext in extensions
            if ext.split()[0].upper() not in hidden and not ext.upper().startswith("AUTH")
        ]
        lines = [first, *kept]
        return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]

    async def handle_HELO(
        self, server: _SinkSMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        self.sink.commands.append(f"HELO {hostname}")
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self,
        server: _SinkSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        sink = self.sink
        reverse_path = "<>" if address == "<>" else f"<{address}>"
        sink.commands.append(" ".join([f"MAIL FROM:{reverse_path}", *mail_options]))
        sink.transactions += 1
        if sink.drop_after == "MAIL":
            await server.drop_and_wait()
        await sink._stall_if("MAIL")
        reply = sink.mail_replies.pop(0) if sink.mail_replies else sink.mail_reply or "250 OK"
        if reply.startswith("421"):
            await server.reply_and_close(reply)
        if reply.startswith("2"):
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
        return reply

    async def handle_RCPT(
        self,
        server: _SinkSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        sink = self.sink
        sink.commands.append(" ".join([f"RCPT TO:<{address}>", *rcpt_options]))
        if sink.drop_after == "RCPT":
            await server.drop_and_wait()
        await sink._stall_if("RCPT")
        key = address.lower()
        once = sink.rcpt_replies_once.get(key)
        reply = once.pop(0) if once else sink.rcpt_replies.get(key, "250 OK")
        if reply.startswith("421"):
            await server.reply_and_close(reply)
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return reply

    async def handle_DATA(self, server: _SinkSMTP, session: Session, envelope: Envelope) -> str:
        sink = self.sink
        sink.commands.append("DATA")
        if sink.drop_after == "DATA":
            await server.drop_and_wait()
        await sink._stall_if("DATA")
        reply = sink.data_replies.pop(0) if sink.data_replies else sink.data_reply or "250 OK"
        if reply.startswith("250"):
            sink._record(
                ReceivedMessage(
                    mail_from="" if envelope.mail_from == "<>" else envelope.mail_from or "",
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=envelope.original_content or b"",
                    peer=_peer_ip(session.peer),
                    tls=session.ssl is not None,
                    ehlo=session.host_name or "",
                )
            )
        elif reply.startswith("421"):
            await server.reply_and_close(reply)
        return reply

    async def handle_RSET(self, server: _SinkSMTP, session: Session, envelope: Envelope) -> str:
        self.sink.commands.append("RSET")
        return "250 OK"

    async def handle_QUIT(self, server: _SinkSMTP, session: Session, envelope: Envelope) -> str:
        self.sink.commands.append("QUIT")
        return "221 Bye"

    def handle_STARTTLS(self, server: _SinkSMTP, session: Session, envelope: Envelope) -> bool:
        self.sink.commands.append("STARTTLS")
        return True
