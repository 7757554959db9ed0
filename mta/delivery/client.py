"""One outbound SMTP session on aiosmtplib's low-level API.

`SmtpSession.open` connects, reads the greeting, says EHLO (HELO if refused), applies the
STARTTLS policy and raises `HostFailure` if this host cannot be used. `transact` runs one
mail transaction and returns an outcome per recipient; it raises only `StaleSession`, for
a pooled session that died before the server answered anything. Every network step runs
inside `asyncio.timeout` with its own per-phase value; aiosmtplib's own timeouts are off.

When the server offers PIPELINING (RFC 2920) a transaction is two writes: RSET (if
needed), MAIL, every RCPT and DATA as one group, then the message (`pipelined`); a
`_ReplyReader` (`reply_reader`) takes the replies, which aiosmtplib would drop when
several arrive in one read. Its settings and errors are in `settings`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import socket
from collections.abc import Awaitable, Callable

import aiosmtplib
from aiosmtplib import (
    SMTPConnectError,
    SMTPResponse,
    SMTPResponseException,
    SMTPServerDisconnected,
)

from mta.replies import S552_MESSAGE_TOO_BIG, S553_BAD_ADDRESS, Reply

from . import replies as r
from .pipelined import run_pipelined
from .reply_reader import _ReplyReader
from .settings import (
    AUTH_SUCCESSFUL,
    NETWORK_ERRORS,
    SERVICE_CLOSING,
    SERVICE_READY,
    HostFailure,
    SessionSettings,
    SourceUnavailable,
    StaleSession,
    TlsHandshakeFailure,
    _ProtocolError,
)
from .tls import DISABLED, is_required, may_reconnect_in_plain, tls_action
from .transaction import Transaction, encode_data, mail_options, size_limit
from .types import Job, Outcome, PeerAddress

logger = logging.getLogger(__name__)

QUIT_TIMEOUT = 5.0  # QUIT is a courtesy; never hold a worker for it


class SmtpSession:
    """An open, greeted (and maybe encrypted) SMTP connection to one MX address."""

    def __init__(self, smtp: aiosmtplib.SMTP, peer: PeerAddress, settings: SessionSettings):
        self._smtp = smtp
        self.peer = peer
        self._settings = settings
        self._timeouts = settings.timeouts
        self.transactions = 0
        self.closing = False  # the server said 421, or the connection is broken
        self._needs_rset = False
        self.pipelining = False  # RFC 2920, as advertised in the last EHLO reply
        self._reader: _ReplyReader | None = None  # installed when pipelining is used
        self.tls_cipher: str | None = None
        self.tls_protocol_version: str | None = None
        # Run once when the session ends (`quit`): releases its shaping leases.
        self.on_close: Callable[[], Awaitable[None]] | None = None

    @classmethod
    async def open(cls, peer: PeerAddress, settings: SessionSettings) -> SmtpSession:
        """Connect and get ready for MAIL; raises HostFailure.

        An opportunistic handshake that fails is retried once on a new connection in plain
        text when the path allows it (`opportunistic_tls_reconnect_on_failed_handshake`).
        """
        try:
            return await cls._open(peer, settings)
        except TlsHandshakeFailure as failure:
            if not may_reconnect_in_plain(settings.tls_mode, settings.reconnect_in_plain):
                raise
            logger.info("%s; reconnecting without TLS", failure.outcome.reply)
        return await cls._open(peer, dataclasses.replace(settings, tls_mode=DISABLED))

    @classmethod
    async def _open(cls, peer: PeerAddress, settings: SessionSettings) -> SmtpSession:
        implicit = settings.implicit_tls
        sock = await _egress_socket(peer, settings)
        bind = settings.source_address
        smtp = aiosmtplib.SMTP(
            # Implicit TLS verifies the name it connects to: the relay's, not its address.
            hostname=None if settings.socket_path else (peer.name if implicit else peer.addr),
            port=None if settings.socket_path or sock else settings.port,
            source_address=None if sock or bind is None else (bind, 0),
            sock=sock,
            timeout=None,
            local_hostname=settings.ehlo_name,
            start_tls=False,
            use_tls=implicit is not None,
            tls_context=None if implicit is None else settings.tls_contexts.for_mode(implicit),
            socket_path=settings.socket_path,
        )
        session = cls(smtp, peer, settings)
        try:
            await session._connect()
            if implicit is not None:
                session._record_tls()
            await session._hello()
            await session._secure()
            await session._authenticate()
            if session.pipelining and smtp.protocol is not None:
                session._reader = _ReplyReader.install(smtp.protocol)
        except BaseException:
            smtp.close()
            if sock is not None:
                sock.close()
            raise
        return session

    @property
    def reusable(self) -> bool:
        return not self.closing and self._smtp.is_connected

    def outcome(self, reply: Reply, command: str) -> Outcome:
        return Outcome(reply, command, self.peer, self.tls_cipher, self.tls_protocol_version)

    def _failure(self, reply: Reply, command: str) -> HostFailure:
        return HostFailure(self.outcome(reply, command))

    def _network_reply(self, command: str, error: BaseException) -> Reply:
        if isinstance(error, _ProtocolError):
            return error.reply
        if isinstance(error, TimeoutError):
            return r.timed_out(self.peer, command)
        return r.connection_lost(self.peer, command)

    async def _command(self, command: str, seconds: float, step: Awaitable[SMTPResponse]) -> Reply:
        """Await one exchange for at most `seconds`; a remote refusal is a Reply, not an error."""
        try:
            async with asyncio.timeout(seconds):
                response = await step
        except SMTPResponseException as error:
            code, message = error.code, error.message
        else:
            code, message = response.code, response.message
        if not 200 <= code < 600:  # aiosmtplib's -1: a malformed or overlong reply
            raise _ProtocolError(r.protocol_error(self.peer, command, message))
        if code == SERVICE_CLOSING:
            self.closing = True  # and aiosmtplib has closed the connection
        return r.from_response(code, message)

    # -- opening -----------------------------------------------------------------------

    async def _connect(self) -> None:
        try:
            reply = await self._command("connect", self._timeouts.connect, self._smtp.connect())
        except _ProtocolError as error:
            raise self._failure(error.reply, "connect") from None
        except TimeoutError:
            raise self._failure(r.connect_timed_out(self.peer), "connect") from None
        except SMTPConnectError as error:
            cause, bind = error.__cause__, self._settings.source_address
            if bind and isinstance(cause, OSError) and cause.errno == errno.EADDRNOTAVAIL:
                # The source's address is not on this machine: no host would do better.
                raise SourceUnavailable(f"cannot bind {bind}: {cause.strerror}") from None
            raise self._failure(self._connect_reply(error), "connect") from None
        except OSError as error:
            raise self._failure(r.connect_failed(self.peer, error), "connect") from None
        if reply.code != SERVICE_READY:
            raise self._failure(r.refused_to_talk(self.peer, "connect", reply), "connect")

    def _connect_reply(self, error: SMTPConnectError) -> Reply:
        cause = error.__cause__
        if isinstance(cause, ConnectionRefusedError):
            return r.connection_refused(self.peer)
        if isinstance(cause, SMTPServerDisconnected):
            return r.connection_lost(self.peer, "connect")
        return r.connect_failed(self.peer, cause or error)

    async def _step(self, command: str, seconds: float, step: Awaitable[SMTPResponse]) -> Reply:
        """An exchange while opening: network trouble makes this host unusable."""
        try:
            return await self._command(command, seconds, step)
        except (_ProtocolError, *NETWORK_ERRORS) as error:
            raise self._failure(self._network_reply(command, error), command) from None

    async def _hello(self) -> None:
        name = self._settings.ehlo_name
        command = "EHLO"
        reply = await self._step(command, self._timeouts.ehlo, self._smtp.ehlo(hostname=name))
        if reply.is_permanent:  # RFC 5321 3.2: an old server may know only HELO
            command = "HELO"
            reply = await self._step(command, self._timeouts.ehlo, self._smtp.helo(hostname=name))
        if not 200 <= reply.code < 300:
            raise self._failure(r.refused_to_talk(self.peer, command, reply), command)
        self.pipelining = self._smtp.supports_extension("pipelining")  # HELO: False

    async def _secure(self) -> None:
        mode = self._settings.tls_mode
        action = tls_action(mode, self._smtp.supports_extension("starttls"))
        if action == "fail":
            raise self._failure(r.tls_not_offered(self.peer), "STARTTLS")
        if action == "starttls" and await self._starttls(mode):
            await self._hello()  # RFC 3207 4.2: forget what was learnt before TLS
            self._record_tls()

    async def _starttls(self, mode: str) -> bool:
        """True once TLS is up; False if an opportunistic STARTTLS was refused."""
        context = self._settings.tls_contexts.for_mode(mode)
        upgrade = self._smtp.starttls(server_hostname=self.peer.name, tls_context=context)
        try:
            reply = await self._command("STARTTLS", self._timeouts.ehlo, upgrade)
        except (_ProtocolError, *NETWORK_ERRORS) as error:
            outcome = self.outcome(r.tls_failed(self.peer, error), "STARTTLS")
            raise TlsHandshakeFailure(outcome) from None
        if reply.code == SERVICE_READY:
            return True
        if is_required(mode) or self.closing or not self._smtp.is_connected:
            raise self._failure(r.refused_to_talk(self.peer, "STARTTLS", reply), "STARTTLS")
        return False  # "may" level: carry on in plain text (RFC 3207 4.1)

    def _record_tls(self) -> None:
        ssl_object = self._smtp.get_transport_info("ssl_object")
        if ssl_object is None:
            return
        cipher = ssl_object.cipher()
        self.tls_cipher = cipher[0] if cipher else None
        self.tls_protocol_version = ssl_object.version()

    async def _authenticate(self) -> None:
        """SASL PLAIN, else LOGIN (RFC 4954, RFC 4616) when the route has credentials; never
        without TLS. A refusal (535) makes the host unusable for now: transient, retried."""
        credentials = self._settings.credentials
        if credentials is None:
            return
        if self.tls_cipher is None:
            raise self._failure(r.auth_without_tls(self.peer), "AUTH")
        try:
            password = credentials.password()
        except OSError as error:
            raise self._failure(r.auth_unavailable(self.peer, str(error)), "AUTH") from None
        methods = self._smtp.server_auth_methods
        user = credentials.username
        if "plain" in methods:
            mechanism, step = "PLAIN", self._smtp.auth_plain(user, password, timeout=None)
        elif "login" in methods:
            mechanism, step = "LOGIN", self._smtp.auth_login(user, password, timeout=None)
        else:
            raise self._failure(r.auth_unavailable(self.peer, "no PLAIN or LOGIN"), "AUTH")
        reply = await self._step("AUTH", self._timeouts.ehlo, step)
        if reply.code != AUTH_SUCCESSFUL:
            refused = r.auth_refused(self.peer, mechanism, user, reply)
            raise self._failure(refused, "AUTH")

    # -- the transaction -----------------------------------------------------------------

    async def transact(self, job: Job) -> dict[str, Outcome]:
        """Send `job`; every recipient gets an outcome. Raises StaleSession only."""
        txn = Transaction(job, self.outcome)
        reused = self.transactions > 0
        self.transactions += 1
        try:
            await self._run(txn, job)
        except (_ProtocolError, *NETWORK_ERRORS) as error:
            self.abort()
            if reused and txn.phase in ("RSET", "MAIL"):
                raise StaleSession(str(error)) from error
            txn.fail_pending(self._network_reply(txn.phase, error))
        except BaseException:
            self.abort()
            raise
        return txn.outcomes()

    async def _run(self, txn: Transaction, job: Job) -> None:
        if self._reader is not None:
            await run_pipelined(self, txn, job, self._reader)
            return
        await self._run_in_steps(txn, job)

    async def _run_in_steps(self, txn: Transaction, job: Job) -> None:
        """One command, one reply at a time (no PIPELINING)."""
        if self._needs_rset:
            await self._reset(txn)
        if await self._envelope(txn, job) and txn.accepted:
            await self._data(txn, job)

    async def _envelope(self, txn: Transaction, job: Job) -> bool:
        """MAIL and one RCPT per recipient; False if the session can go no further."""
        txn.begin("MAIL")
        if not await self._mail(txn, job):
            return False
        self._needs_rset = True  # a transaction stays open until the final reply
        txn.begin("RCPT")
        for recipient in txn.recipients:
            if not await self._rcpt(txn, recipient):
                return False
        return True

    async def _data(self, txn: Transaction, job: Job) -> None:
        if not await self._data_accepted(txn):
            return
        txn.begin(".")
        txn.on_dot(await self._command(".", self._timeouts.data_dot, self._send(job.data)))
        self._needs_rset = False  # RFC 5321 4.1.1.4: the final reply ends the transaction

    async def _data_accepted(self, txn: Transaction) -> bool:
        """DATA and its 354; False when refused or the server closed (the txn records it)."""
        txn.begin("DATA")
        data = self._smtp.execute_command(b"DATA", timeout=None)
        reply = await self._command("DATA", self._timeouts.data, data)
        return not self._closed_by(txn, reply) and txn.on_data(reply)

    def _closed_by(self, txn: Transaction, reply: Reply) -> bool:
        """A 421 ends the session: it answers every recipient still waiting."""
        if reply.code != SERVICE_CLOSING:
            return False
        txn.fail_pending(reply)
        return True

    async def _reset(self, txn: Transaction) -> None:
        txn.begin("RSET")
        reply = await self._command("RSET", self._timeouts.mail, self._smtp.rset(timeout=None))
        if not 200 <= reply.code < 300:
            raise _ProtocolError(reply)  # the server is in no state for a new transaction
        self._needs_rset = False

    def _refusal(self, job: Job) -> Reply | None:
        """A reason not to send MAIL at all: too big, or SMTPUTF8 needed but missing."""
        limit = size_limit(self._smtp.esmtp_extensions)
        if limit is not None and len(job.data) > limit:
            return S552_MESSAGE_TOO_BIG.with_text(f"message exceeds the limit of {self.peer}")
        if not job.sender.isascii() and not self._smtp.supports_extension("smtputf8"):
            return r.smtputf8_required(self.peer)
        return None

    async def _mail(self, txn: Transaction, job: Job) -> bool:
        refusal = self._refusal(job)
        if refusal is not None:
            txn.refuse(txn.recipients, refusal, "MAIL")
            return False
        options = mail_options(job, self._smtp.esmtp_extensions)
        encoding = "utf-8" if "SMTPUTF8" in options else "ascii"
        try:
            step = self._smtp.mail(job.sender, options=options, encoding=encoding, timeout=None)
            reply = await self._command("MAIL", self._timeouts.mail, step)
        except ValueError as error:  # aiosmtplib refused to put the address on the wire
            txn.refuse(txn.recipients, S553_BAD_ADDRESS.with_text(str(error)), "MAIL")
            return False
        if reply.code == SERVICE_CLOSING and self.transactions > 1:
            raise SMTPServerDisconnected(str(reply))  # an idle pooled session: stale
        return not self._closed_by(txn, reply) and txn.on_mail(reply)

    async def _rcpt(self, txn: Transaction, recipient: str) -> bool:
        """False when the session ended (421); per-recipient refusals are recorded."""
        if not recipient.isascii() and not self._smtp.supports_extension("smtputf8"):
            txn.refuse([recipient], r.smtputf8_required(self.peer), "RCPT")
            return True
        encoding = "ascii" if recipient.isascii() else "utf-8"
        try:
            step = self._smtp.rcpt(recipient, encoding=encoding, timeout=None)
            reply = await self._command("RCPT", self._timeouts.rcpt, step)
        except ValueError as error:
            txn.refuse([recipient], S553_BAD_ADDRESS.with_text(str(error)), "RCPT")
            return True
        if self._closed_by(txn, reply):
            return False
        txn.on_rcpt(recipient, reply)
        return True

    async def _send(self, data: bytes) -> SMTPResponse:
        """Write the dot-stuffed message and read the reply to the final dot.

        aiosmtplib's `data()` would wait for 354 and for this reply under one timeout;
        RFC 5321 4.5.3.2.6 gives the final reply its own, longer one (data_dot_timeout).
        """
        protocol = self._smtp.protocol
        if protocol is None:
            raise SMTPServerDisconnected("Connection lost")
        protocol.write(encode_data(data))
        # No await between the write and read_response(): aiosmtplib drops bytes that
        # arrive while no response is being awaited.
        return await protocol.read_response(timeout=None)

    # -- closing -------------------------------------------------------------------------

    def abort(self) -> None:
        """Drop the connection without QUIT."""
        self.closing = True
        self._smtp.close()

    async def quit(self) -> None:
        """Say QUIT (briefly) and close; never raises except CancelledError."""
        try:
            if self._smtp.is_connected:
                async with asyncio.timeout(QUIT_TIMEOUT):
                    await self._smtp.quit(timeout=None)
        except NETWORK_ERRORS:
            pass
        finally:
            self.abort()
            on_close, self.on_close = self.on_close, None
            if on_close is not None:
                await asyncio.shield(on_close())  # give back the connection's leases


async def _egress_socket(peer: PeerAddress, settings: SessionSettings) -> socket.socket | None:
    """A socket connected through the egress source's connector (None: aiosmtplib connects).
    Raises HostFailure for this host; SourceUnavailable passes through."""
    if settings.connector is None:
        return None
    try:
        async with asyncio.timeout(settings.timeouts.connect):
            return await settings.connector(peer.addr, settings.port)
    except TimeoutError:
        raise HostFailure(Outcome(r.connect_timed_out(peer), "connect", peer)) from None
    except OSError as error:
        raise HostFailure(Outcome(r.connect_failed(peer, error), "connect", peer)) from None
