"""The inbound SMTP listeners: binding, connection limits, and closing sessions in order."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
from collections import Counter
from collections.abc import Callable

from mta.config import SmtpConfig
from mta.replies import S421_SHUTTING_DOWN, S421_TOO_MANY_CONNECTIONS, Reply
from mta.smtp.handler import Handler, Policy
from mta.smtp.security import Security
from mta.smtp.session import SmtpSession
from mta.smtp.settings import SessionSettings
from mta.smtp.types import AcceptPath, EventLog
from mta.units import parse_hostport

log = logging.getLogger(__name__)

ABORT_SETTLE_SECONDS = 1.0  # bound on waiting for aborted sessions to report closed


class ConnectionLimiter:
    """Counts admitted connections, in total and per client IP."""

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self._max_total = max_total
        self._max_per_ip = max_per_ip
        self._per_ip: Counter[str] = Counter()
        self._total = 0

    def admit(self, ip: str | None) -> bool:
        """Count a connection; `ip` None counts it in the total only (client not known yet)."""
        if self._total >= self._max_total:
            return False
        if ip is not None and not self.identify(ip):
            return False
        self._total += 1
        return True

    def identify(self, ip: str) -> bool:
        """Count an admitted connection against its client IP's limit."""
        if self._per_ip[ip] >= self._max_per_ip:
            return False
        self._per_ip[ip] += 1
        return True

    def release(self, ip: str | None) -> None:
        self._total -= 1
        if ip is None:
            return
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]


class SmtpServer:
    """Inbound SMTP on every `config.listen` address, built on aiosmtpd.

    Also `implicit_tls_listen` (TLS from the first byte, port 465 style) and
    `proxy_protocol_listen` (a PROXY header first, from `proxy_networks` only). STARTTLS and
    AUTH, rates, the DATA memory bound and the sender policy come from `config` (`Security`);
    `ssl_context`, when given, replaces the configured certificate files.

    Shutdown order: `stop_listening()`, then `close_sessions()`. Sessions over
    `max_connections` / `max_connections_per_ip` are greeted with 421 4.7.0 and closed.
    """

    def __init__(
        self,
        config: SmtpConfig,
        *,
        hostname: str,
        accept: AcceptPath,
        events: EventLog,
        ssl_context: ssl.SSLContext | None = None,
        security: Security | None = None,
    ) -> None:
        self._config = config
        self._security = security if security is not None else Security.from_config(config)
        if ssl_context is None:
            ssl_context = self._security.tls_context()
        self._handler = Handler(Policy.from_config(config, hostname), accept, self._security)
        self._settings = SessionSettings(
            hostname=hostname,
            idle_timeout=config.idle_timeout,
            data_timeout=config.data_timeout,
            max_message_bytes=config.max_message_bytes,
            max_errors=config.max_errors,
            smtputf8=config.smtputf8,
            tls_context=ssl_context,
            events=events,
            security=self._security,
            proxy_timeout=config.proxy_protocol_timeout,
        )
        self._limiter = ConnectionLimiter(config.max_connections, config.max_connections_per_ip)
        self._sessions: dict[SmtpSession, str | None] = {}  # admitted session -> client IP
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self._refuse_with: Reply | None = None
        self._listeners: list[asyncio.Server] = []
        self._kinds: dict[asyncio.Server, str] = {}  # listener -> "plain" / "tls" / "proxy"

    async def start(self) -> None:
        """Bind every listen address of the config ("host:port"; port 0 picks a free port)."""
        tls = self._settings.tls_context
        kinds = [
            ("plain", self._config.listen, self._settings, None),
            ("tls", self._config.implicit_tls_listen, self._variant(implicit_tls=True), tls),
            ("proxy", self._config.proxy_protocol_listen, self._variant(proxy_protocol=True), None),
        ]
        try:
            for kind, listens, settings, context in kinds:
                for listen in listens:
                    await self._bind(kind, listen, self._factory(settings), context)
        except BaseException:
            await self.stop_listening()
            raise

    def _variant(
        self, *, implicit_tls: bool = False, proxy_protocol: bool = False
    ) -> SessionSettings:
        return dataclasses.replace(
            self._settings, implicit_tls=implicit_tls, proxy_protocol=proxy_protocol
        )

    async def _bind(
        self,
        kind: str,
        listen: str,
        factory: Callable[[], SmtpSession],
        context: ssl.SSLContext | None,
    ) -> None:
        if kind == "tls" and context is None:
            raise ValueError(f"{listen}: implicit TLS needs a certificate")
        host, port = parse_hostport(listen)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, host or None, port, ssl=context)
        self._listeners.append(server)
        self._kinds[server] = kind

    def listener_addresses(self, kind: str) -> list[tuple[str, int]]:
        """Bound (host, port) pairs of one kind of listener: "plain", "tls" or "proxy"."""
        names = [
            sock.getsockname()
            for server in self._listeners
            if self._kinds[server] == kind
            for sock in server.sockets
        ]
        return [(str(name[0]), int(name[1])) for name in names]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound (host, port) pairs of the `listen` addresses, once started."""
        return self.listener_addresses("plain")

    @property
    def data_in_flight(self) -> int:
        """Octets of DATA held in memory by all sessions now."""
        return self._security.data.in_flight

    @property
    def active_sessions(self) -> int:
        return len(self._sessions)

    async def stop_listening(self) -> None:
        """Close the listening sockets; live sessions carry on."""
        for server in self._listeners:
            server.close()

    async def close_sessions(
        self, reply: Reply = S421_SHUTTING_DOWN, *, grace: float | None = None
    ) -> None:
        """Send `reply` to every session and close it.

        A session between commands is closed at once; one in the middle of a command (DATA)
        first finishes it, reply included. Sessions still open after `grace` seconds (default
        `data_timeout`), or when this call is cancelled, are aborted. Connections that still
        arrive are greeted with `reply`.
        """
        self._refuse_with = reply
        for session in list(self._sessions):
            session.request_close(reply)
        try:
            async with asyncio.timeout(self._config.data_timeout if grace is None else grace):
                await self._all_closed.wait()
        except TimeoutError:
            log.warning("aborting %d SMTP sessions still busy at shutdown", len(self._sessions))
        finally:
            for session in list(self._sessions):
                session.abort()
        with contextlib.suppress(TimeoutError):  # aborted connections report back at once
            async with asyncio.timeout(ABORT_SETTLE_SECONDS):
                await self._all_closed.wait()
        for server in self._listeners:
            if not server.is_serving():
                await server.wait_closed()

    def _factory(self, settings: SessionSettings) -> Callable[[], SmtpSession]:
        def new_session() -> SmtpSession:
            self._security.tls_context()  # reloads a changed certificate, at most once a second
            return SmtpSession(self._handler, settings, self)

        return new_session

    def session_opened(self, session: SmtpSession, peer_ip: str) -> Reply | None:
        """SessionHost: admit a new connection or say why not."""
        if self._refuse_with is not None:
            return self._refuse_with
        client = None if session.proxied else peer_ip  # a proxy's IP says nothing of clients
        if not self._limiter.admit(client):
            log.info("refusing SMTP connection from %s: too many connections", peer_ip)
            return S421_TOO_MANY_CONNECTIONS
        self._sessions[session] = client
        self._all_closed.clear()
        return None

    def session_identified(self, session: SmtpSession, client_ip: str) -> Reply | None:
        """SessionHost: count a proxied session against its real client's IP."""
        if session not in self._sessions:
            return S421_TOO_MANY_CONNECTIONS
        if not self._limiter.identify(client_ip):
            log.info("refusing SMTP connection from %s: too many connections", client_ip)
            return S421_TOO_MANY_CONNECTIONS
        self._sessions[session] = client_ip
        return None

    def session_closed(self, session: SmtpSession) -> None:
        """SessionHost: forget a session whose connection is gone."""
        if session not in self._sessions:  # refused, or reported twice
            return
        self._limiter.release(self._sessions.pop(session))
        if not self._sessions:
            self._all_closed.set()
