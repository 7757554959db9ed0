"""Servers for route tests: a smart host that requires STARTTLS (or implicit TLS) and SASL
AUTH, and an LMTP server with scripted per-recipient replies. Both real aiosmtpd on loopback.

    async with SmartHost(users={"apikey": "secret"}) as relay:
        ...  # relay.port; relay.ca_pem for `[delivery] tls_ca_file`
        await relay.wait_for_messages(1)
"""

from __future__ import annotations

import asyncio
import ssl
import warnings
from dataclasses import dataclass, field
from typing import Any, cast

import trustme
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.net import free_port


@dataclass(frozen=True)
class Received:
    """One message a server accepted: envelope, content, whether it came over TLS, and the
    user it authenticated as ("" if none)."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    user: str


@dataclass(frozen=True)
class ServerCert:
    """A trustme CA and a server certificate for 127.0.0.1 and localhost."""

    ca_pem: bytes
    context: ssl.SSLContext

    @classmethod
    def make(cls) -> ServerCert:
        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.configure_cert(context)
        return cls(ca.cert_pem.bytes(), context)


class _Server:
    """An asyncio server of aiosmtpd protocols that records what it accepts."""

    def __init__(self, host: str, port: int, socket_path: str | None = None) -> None:
        self.host = host
        self.port = 0 if socket_path else port or free_port(host)
        self.socket_path = socket_path  # a unix socket instead of host:port
        self.messages: list[Received] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._open: set[SMTP] = set()
        self._changed = asyncio.Event()

    def _protocol(self) -> SMTP:
        raise NotImplementedError

    def _ssl(self) -> ssl.SSLContext | None:
        return None  # implicit TLS: the server context

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.socket_path is not None:
            self._server = await loop.create_unix_server(self._tracked, self.socket_path)
            return
        self._server = await loop.create_server(
            self._tracked, self.host, self.port, ssl=self._ssl()
        )

    def _tracked(self) -> SMTP:
        protocol = self._protocol()
        self._open.add(protocol)
        self.connections += 1
        return protocol

    async def stop(self) -> None:
        """Stop listening and cut every connection (a server that went down)."""
        if self._server is None:
            return
        self._server.close()
        tasks = []
        for protocol in list(self._open):
            if protocol.transport is not None:
                cast(asyncio.Transport, protocol.transport).abort()
            if protocol._handler_coroutine is not None:
                tasks.append(protocol._handler_coroutine)
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._open.clear()
        self._server = None

    async def __aenter__(self) -> Any:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def record(self, message: Received) -> None:
        self.messages.append(message)
        self._changed.set()

    async def wait_for_messages(self, count: int, timeout: float = 20.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()
        return list(self.messages)


class _RecordingHandler:
    def __init__(self, server: _Server) -> None:
        self._server = server

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        user = session.auth_data.login.decode() if session.authenticated else ""
        transport = smtp.transport
        implicit = transport is not None and transport.get_extra_info("sslcontext") is not None
        tls = session.ssl is not None or implicit
        self._server.record(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), content, tls, user)
        )
        return "250 2.0.0 OK relayed"


class SmartHost(_Server):
    """An ESP-like relay: STARTTLS required before AUTH (or implicit TLS), AUTH PLAIN/LOGIN
    required before MAIL, checked against `users` (change it any time). `auth_attempts`
    lists (user, accepted) in order."""

    def __init__(
        self,
        users: dict[str, str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        implicit_tls: bool = False,
    ) -> None:
        super().__init__(host, port)
        self.users = users
        self.cert = ServerCert.make()
        self.implicit_tls = implicit_tls
        self.auth_attempts: list[tuple[str, bool]] = []

    @property
    def ca_pem(self) -> bytes:
        return self.cert.ca_pem

    def _ssl(self) -> ssl.SSLContext | None:
        return self.cert.context if self.implicit_tls else None

    def _protocol(self) -> SMTP:
        with warnings.catch_warnings():
            # Implicit TLS: aiosmtpd knows only STARTTLS as TLS and warns about AUTH without.
            warnings.simplefilter("ignore", UserWarning)
            return self._smtp()

    def _smtp(self) -> SMTP:
        return SMTP(
            _RecordingHandler(self),
            hostname="smarthost.test",
            tls_context=None if self.implicit_tls else self.cert.context,
            require_starttls=not self.implicit_tls,
            auth_required=True,
            auth_require_tls=not self.implicit_tls,
            authenticator=self._authenticate,
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = data.login.decode(), data.password.decode()
        ok = self.users.get(user) == password
        self.auth_attempts.append((user, ok))
        return AuthResult(success=ok, handled=False, auth_data=data)


@dataclass
class LmtpScript:
    """Per-recipient replies after the final dot (lowercase address -> reply), default 250;
    `once` replies are used first, one per delivery."""

    replies: dict[str, str] = field(default_factory=dict)
    once: dict[str, list[str]] = field(default_factory=dict)

    def reply(self, rcpt: str) -> str:
        queued = self.once.get(rcpt.lower())
        if queued:
            return queued.pop(0)
        return self.replies.get(rcpt.lower(), "250 2.1.5 delivered to mailbox")


class _LmtpHandler:
    def __init__(self, sink: LmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        replies = [self._sink.script.reply(rcpt) for rcpt in envelope.rcpt_tos]
        delivered = [
            r for r, reply in zip(envelope.rcpt_tos, replies, strict=True) if reply[0] == "2"
        ]
        if delivered:
            content = envelope.original_content or b""
            self._sink.record(Received(str(envelope.mail_from), delivered, content, False, ""))
        return "\r\n".join(replies)  # RFC 2033 4.2: one reply per recipient, in order


class LmtpSink(_Server):
    """An LMTP server (aiosmtpd's LMTP, as Mailman's runner) that records the recipients
    each message was delivered to (those whose reply was 2xx)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        socket_path: str | None = None,
        **script: Any,
    ) -> None:
        super().__init__(host, port, socket_path)
        self.script = LmtpScript(**script)

    def _protocol(self) -> SMTP:
        return LMTP(_LmtpHandler(self), hostname="mailman-core.test")
