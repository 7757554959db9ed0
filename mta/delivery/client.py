"""One outbound SMTP session on aiosmtplib's low-level API.

`SmtpSession.open` connects, reads the greeting, says EHLO (HELO if refused), applies the
STARTTLS policy and raises `HostFailure` if this host cannot be used. `transact` runs one
mail transaction and returns an outcome per recipient; it raises only `StaleSession`, for
a pooled session that died before the server answered anything. Every network step runs
inside `asyncio.timeout` with its own per-phase value; aiosmtplib's own timeouts are off.

When the server offers PIPELINING (RFC 2920) a transaction is two writes: RSET (if
needed), MAIL, every RCPT and DATA as one group, then the message; `_ReplyReader` takes
the replies, which aiosmtplib would drop when several arrive in one read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import aiosmtplib
from aiosmtplib import (
    SMTPConnectError,
    SMTPException,
    SMTPResponse,
    SMTPResponseException,
    SMTPServerDisconnected,
)
from aiosmtplib.protocol import SMTPProtocol

from mta.config import DeliveryConfig
from mta.replies import S552_MESSAGE_TOO_BIG, S553_BAD_ADDRESS, Reply
from shaping.options import EgressPathConfig

from . import replies as r
from .pipeline import DATA, RSET, MalformedReply, mail_command, rcpt_command, take_reply
from .tls import DISABLED, TlsContexts, is_required, may_reconnect_in_plain, tls_action
from .transaction import END_OF_DATA, Transaction, encode_data, mail_options, size_limit
from .types import Job, Outcome, PeerAddress

logger = logging.getLogger(__name__)

QUIT_TIMEOUT = 5.0  # QUIT is a courtesy; never hold a worker for it
SERVICE_READY = 220
SERVICE_CLOSING = 421  # RFC 5321 3.8: the server is closing the channel
START_MAIL_INPUT = 354
AUTH_SUCCESSFUL = 235  # RFC 4954 6
NETWORK_ERRORS = (SMTPException, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds per SMTP phase (RFC 5321 4.5.3.2)."""

    connect: float
    ehlo: float
    mail: float
    rcpt: float
    data: float
    data_dot: float

    @classmethod
    def from_config(cls, config: DeliveryConfig | EgressPathConfig) -> Timeouts:
        return cls(
            config.connect_timeout,
            config.ehlo_timeout,
            config.mail_from_timeout,
            config.rcpt_to_timeout,
            config.data_timeout,
            config.data_dot_timeout,
        )


class Credentials(Protocol):
    """SASL credentials of a relay route (mta.routing.PasswordSource)."""

    username: str

    def password(self) -> str:
        """The current password; raises OSError when it cannot be read now."""
        ...


@dataclass(frozen=True, slots=True)
class SessionSettings:
    ehlo_name: str
    port: int
    tls_mode: str
    timeouts: Timeouts
    tls_contexts: TlsContexts
    # The path's `opportunistic_tls_reconnect_on_failed_handshake`.
    reconnect_in_plain: bool = False
    # Relay routes (mta.delivery.relay): TLS from the first byte, verified per this mode
    # ("Required" or "RequiredInsecure"); SASL credentials, only ever sent under TLS; an
    # LMTP server's unix socket.
    implicit_tls: str | None = None
    credentials: Credentials | None = None
    socket_path: str | None = None
    # The egress source (mta.egress.sources): a local address to bind, or a `connector`
    # that returns a socket connected to (address, port), through a SOCKS5 proxy.
    source_address: str | None = None
    connector: Connector | None = None


Connector = Callable[[str, int], Awaitable[socket.socket]]


class SourceUnavailable(Exception):
    """The egress source cannot connect anywhere now (its proxy is down, its address is not
    on this machine): no other host of the site would do better."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HostFailure(Exception):
    """This host cannot take mail now; `outcome` says why. Try the next one."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(str(outcome.reply))
        self.outcome = outcome


class TlsHandshakeFailure(HostFailure):
    """The TLS handshake after STARTTLS failed (a certificate that does not verify too)."""


class StaleSession(Exception):
    """A reused session was dead before the server answered: open a new one."""


class _ProtocolError(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


class _ReplyReader(asyncio.Protocol):
    """Every reply the server sends during a pipelined transaction, in order.

    aiosmtplib parses one reply per `read_response()` and drops whatever arrives while
    no reply is awaited, so a pipelined group's replies (often one TCP segment) would
    be lost. This protocol sits between the transport and aiosmtplib's for the rest of
    the session (`set_protocol`: uvloop caches the protocol's methods, so patching them
    would not do): inside `with reader:` it keeps the replies, outside it hands every
    byte and event to aiosmtplib as if it were not there (QUIT, for one).
    """

    def __init__(self, protocol: SMTPProtocol) -> None:
        self._protocol = protocol
        self._active = False
        self._buffer = bytearray()
        self._replies: deque[tuple[int, str]] = deque()
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    @classmethod
    def install(cls, protocol: SMTPProtocol) -> _ReplyReader:
        if protocol.transport is None:
            raise SMTPServerDisconnected("Connection lost")
        reader = cls(protocol)
        protocol.transport.set_protocol(reader)
        return reader

    def __enter__(self) -> _ReplyReader:
        self._active = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Bytes still unread (a server answering more than it was asked) are dropped,
        # as aiosmtplib drops unsolicited ones.
        self._active = False
        self._buffer.clear()
        self._replies.clear()

    def take(self) -> tuple[int, str] | None:
        """The next reply if it has come (no coroutine: most replies are read early)."""
        return self._replies.popleft() if self._replies else None

    async def next(self) -> tuple[int, str]:
        """The next reply; raises SMTPServerDisconnected or MalformedReply."""
        while not self._replies:
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._replies.popleft()

    # -- asyncio.Protocol: the transport calls these ---------------------------------

    def data_received(self, data: bytes) -> None:
        if not self._active:
            self._protocol.data_received(data)
            return
        if self._error is not None:
            return
        self._buffer.extend(data)
        try:
            while (reply := take_reply(self._buffer)) is not None:
                self._replies.append(reply)
        except MalformedReply as error:
            self._error = error
        self._wake()

    def eof_received(self) -> bool:
        return bool(self._protocol.eof_received())  # False: the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        self._protocol.connection_lost(exc)
        if self._error is None:
            self._error = SMTPServerDisconnected("Connection lost")
        self._wake()

    def pause_writing(self) -> None:
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._protocol.resume_writing()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


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
            await self._run_pipelined(txn, job, self._reader)
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
        txn.begin("DATA")
        data = self._smtp.execute_command(b"DATA", timeout=None)
        reply = await self._command("DATA", self._timeouts.data, data)
        if self._closed_by(txn, reply) or not txn.on_data(reply):
            return
        txn.begin(".")
        txn.on_dot(await self._command(".", self._timeouts.data_dot, self._send(job.data)))
        self._needs_rset = False  # RFC 5321 4.1.1.4: the final reply ends the transaction

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

    # -- the pipelined transaction (RFC 2920) --------------------------------------------

    def _group(self, txn: Transaction, job: Job) -> tuple[list[bytes], list[str]]:
        """The command lines of the group before DATA, and the recipients they name.

        Recipients that cannot be sent are settled here; no line at all when nothing
        would be left to send (then neither MAIL nor RCPT goes on the wire).
        """
        refusal = self._refusal(job)
        if refusal is not None:
            txn.refuse(txn.recipients, refusal, "MAIL")
            return [], []
        options = mail_options(job, self._smtp.esmtp_extensions)
        try:
            mail = mail_command(job.sender, options, "utf-8" if "SMTPUTF8" in options else "ascii")
        except ValueError as error:
            txn.refuse(txn.recipients, S553_BAD_ADDRESS.with_text(str(error)), "MAIL")
            return [], []
        lines = [RSET, mail] if self._needs_rset else [mail]
        named: list[str] = []
        utf8 = self._smtp.supports_extension("smtputf8")
        for recipient in txn.recipients:
            ascii_only = recipient.isascii()
            if not ascii_only and not utf8:
                txn.refuse([recipient], r.smtputf8_required(self.peer), "RCPT")
                continue
            try:
                lines.append(rcpt_command(recipient, "ascii" if ascii_only else "utf-8"))
            except ValueError as error:
                txn.refuse([recipient], S553_BAD_ADDRESS.with_text(str(error)), "RCPT")
                continue
            named.append(recipient)
        return (lines, named) if named else ([], [])

    async def _run_pipelined(self, txn: Transaction, job: Job, reader: _ReplyReader) -> None:
        """RFC 2920 3.1: [RSET,] MAIL, every RCPT and DATA in one write, the replies read
        in order, then the message (if DATA got 354) in a second write.

        Timeouts: one `asyncio.timeout` for the whole transaction, whose deadline is
        moved to "now + that command's phase timeout" each time a reply has to be
        waited for (replies already read cost nothing). So every reply gets exactly the
        time it gets in lock-step; neither the sum of the phase timeouts (100 RCPTs at
        300 s would let a dead server hold the worker for hours) nor their maximum (a
        server that spends a while on each RCPT would be cut off) does that.
        """
        lines, named = self._group(txn, job)
        if not lines:
            return
        protocol = self._smtp.protocol
        if protocol is None:
            raise SMTPServerDisconnected("Connection lost")
        lines.append(DATA)
        with reader:
            async with asyncio.timeout(None) as deadline:
                protocol.write(b"".join(lines))
                replies = _Replies(self, txn, reader, deadline)
                if self._needs_rset:
                    await replies.reset()
                if await replies.envelope(named):
                    await replies.content(job.data)

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


class _Replies:
    """Reads one pipelined transaction's replies in order and settles the recipients.

    Each method returns False when the session ended (421): every recipient still
    waiting got that reply, and no further reply is read.
    """

    def __init__(
        self,
        session: SmtpSession,
        txn: Transaction,
        reader: _ReplyReader,
        deadline: asyncio.Timeout,
    ) -> None:
        self._session = session
        self._txn = txn
        self._reader = reader
        self._deadline = deadline
        self._timeouts = session._settings.timeouts

    async def _next(self, command: str, seconds: float) -> Reply:
        """The reply to `command`, waiting at most `seconds` if it has not come yet."""
        self._txn.begin(command)
        try:
            received = self._reader.take()
            if received is None:
                self._deadline.reschedule(asyncio.get_running_loop().time() + seconds)
                received = await self._reader.next()
        except MalformedReply as error:
            raise _ProtocolError(
                r.protocol_error(self._session.peer, command, str(error))
            ) from None
        code, message = received
        if not 200 <= code < 600:
            raise _ProtocolError(r.protocol_error(self._session.peer, command, message))
        reply = r.from_response(code, message)
        if code == SERVICE_CLOSING:
            self._session.abort()  # RFC 5321 3.8: the server closes the channel
        return reply

    def _closed_by(self, reply: Reply) -> bool:
        return self._session._closed_by(self._txn, reply)

    async def reset(self) -> None:
        reply = await self._next("RSET", self._timeouts.mail)
        if not 200 <= reply.code < 300:
            raise _ProtocolError(reply)  # as in lock-step: the session is unusable
        self._session._needs_rset = False

    async def envelope(self, named: list[str]) -> bool:
        """MAIL's and every RCPT's reply; False if the session can go no further."""
        session, txn = self._session, self._txn
        reply = await self._next("MAIL", self._timeouts.mail)
        if reply.code == SERVICE_CLOSING and session.transactions > 1:
            raise SMTPServerDisconnected(str(reply))  # an idle pooled session: stale
        if self._closed_by(reply):
            return False
        # A refused MAIL settles everyone; the RCPT replies (503) must still be read.
        mail_accepted = txn.on_mail(reply)
        session._needs_rset = mail_accepted
        for recipient in named:
            reply = await self._next("RCPT", self._timeouts.rcpt)
            if self._closed_by(reply):
                return False
            if mail_accepted:
                txn.on_rcpt(recipient, reply)
        return True

    async def content(self, data: bytes) -> None:
        """DATA's reply, then the message and the reply to its final dot."""
        txn = self._txn
        reply = await self._next("DATA", self._timeouts.data)
        if self._closed_by(reply):
            return
        if reply.code != START_MAIL_INPUT:
            # The recipients were all refused (then this is 503/554, RFC 2920 3.1) or
            # DATA itself was: the transaction may still be open, RSET comes next time.
            txn.on_data(reply)
            return
        protocol = self._session._smtp.protocol
        if protocol is None:
            raise SMTPServerDisconnected("Connection lost")
        # RFC 2920 3.1: a server may accept DATA although no RCPT was; the client must
        # then end the (empty) message with a lone dot, never send the content.
        empty = not txn.accepted
        protocol.write(END_OF_DATA if empty else encode_data(data))
        reply = await self._next(".", self._timeouts.data_dot)
        if self._closed_by(reply):
            return
        self._session._needs_rset = False  # RFC 5321 4.1.1.4: the final reply ends it
        if not empty:
            txn.on_dot(reply)
