"""The inbound SMTP listeners: binding, connection limits, and closing sessions in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import Counter

from mta.config import SmtpConfig
from mta.replies import S421_SHUTTING_DOWN, S421_TOO_MANY_CONNECTIONS, Reply
from mta.smtp.handler import Handler, Policy
from mta.smtp.session import SessionSettings, SmtpSession
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

    def admit(self, ip: str) -> bool:
        if self._total >= self._max_total or self._per_ip[ip] >= self._max_per_ip:
            return False
        self._total += 1
        self._per_ip[ip] += 1
        return True

    def release(self, ip: str) -> None:
        self._total -= 1
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]


class SmtpServer:
    """Inbound SMTP on every `config.listen` address, built on aiosmtpd.

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
    ) -> None:
        self._config = config
        self._handler = Handler(Policy.from_config(config, hostname), accept)
        self._settings = SessionSettings(
            hostname=hostname,
            idle_timeout=config.idle_timeout,
            data_timeout=config.data_timeout,
            max_message_bytes=config.max_message_bytes,
            max_errors=config.max_errors,
            smtputf8=config.smtputf8,
            tls_context=ssl_context,
            events=events,
        )
        self._limiter = ConnectionLimiter(config.max_connections, config.max_connections_per_ip)
        self._sessions: dict[SmtpSession, str] = {}  # admitted session -> client IP
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self._refuse_with: Reply | None = None
        self._listeners: list[asyncio.Server] = []

    async def start(self) -> None:
        """Bind every `config.listen` "host:port" (port 0 picks a free port)."""
        loop = asyncio.get_running_loop()
        try:
            for listen in self._config.listen:
                host, port = parse_hostport(listen)
                server = await loop.create_server(self._new_session, host or None, port)
                self._listeners.append(server)
        except BaseException:
            await self.stop_listening()
            raise

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound (host, port) pairs, once started."""
        names = [sock.getsockname() for server in self._listeners for sock in server.sockets]
        return [(str(name[0]), int(name[1])) for name in names]

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

    def _new_session(self) -> SmtpSession:
        return SmtpSession(self._handler, self._settings, self)

    def session_opened(self, session: SmtpSession, peer_ip: str) -> Reply | None:
        """SessionHost: admit a new connection or say why not."""
        if self._refuse_with is not None:
            return self._refuse_with
        if not self._limiter.admit(peer_ip):
            log.info("refusing SMTP connection from %s: too many connections", peer_ip)
            return S421_TOO_MANY_CONNECTIONS
        self._sessions[session] = peer_ip
        self._all_closed.clear()
        return None

    def session_closed(self, session: SmtpSession) -> None:
        """SessionHost: forget a session whose connection is gone."""
        peer_ip = self._sessions.pop(session, None)
        if peer_ip is None:
            return
        self._limiter.release(peer_ip)
        if not self._sessions:
            self._all_closed.set()
