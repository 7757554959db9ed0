"""One SMTP connection: aiosmtpd's protocol with small overrides where a handler hook is not enough.

What aiosmtpd 1.4.6 does and what we change (see also DataReceiver):
- Command lines: it allows 512 octets *plus* CRLF, and every EHLO grows MAIL's limit (by 26
  for SIZE, 10 for SMTPUTF8) in a table shared by all sessions. Ours is 512 octets with CRLF
  for every command (RFC 5321 4.5.3.1.4), fixed: with paths of at most 256 octets (4.5.3.1.3)
  a valid MAIL line never needs the extension allowances. Over-long lines get 500 5.5.2.
- DATA: its loop ends data only at CRLF.CRLF and unstuffs once (correct), but keeps every
  fragment of a line without CRLF in memory, answers limits without enhanced codes and costs
  several Python calls per line. Our smtp_DATA reads whatever has arrived, up to DATA_CHUNK
  octets at a time, lets the pure DataReceiver decide, and gives back to the command reader
  what the client pipelined after the end of data.
- Idle timeout: it closes silently; we send 421 4.4.2 first. During DATA `data_timeout`
  applies between received pieces instead.
- Unknown commands: it hangs up after 5 with a 502 of its own; all command errors (syntax,
  unknown, bad sequence) share our `max_errors` budget, then 421 4.7.0 and close.
- AUTH: refused with 503 5.5.1 inside a mail transaction (RFC 4954 4); aiosmtpd allows it.
- Replies: every reply goes out through `push`, which completes aiosmtpd's own replies with
  enhanced codes, counts command errors and reports 4xx/5xx to MAIL/RCPT/DATA as Rejections.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, AnyStr, cast

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, Session, syntax

from mta.replies import (
    S354_START_INPUT,
    S421_AUTH_FAILURES,
    S421_IDLE_TIMEOUT,
    S421_TOO_MANY_ERRORS,
    S452_DATA_IN_FLIGHT,
    S554_PROXY_REFUSED,
    Reply,
)
from mta.smtp import proxy
from mta.smtp.auth import S503_AUTH_IN_TRANSACTION, check_login
from mta.smtp.codes import (
    COMMAND_ERROR_CODES,
    S500_UNKNOWN_COMMAND,
    S501_DATA_SYNTAX,
    S503_NEED_RCPT,
    complete_reply,
    reply_code,
)
from mta.smtp.data import CRLF, MAX_TEXT_LINE, DataReceiver
from mta.smtp.dispatch import MAX_COMMAND_LINE, CommandLimits, Dispatch
from mta.smtp.dispatch import SIMPLE_PATH as _SIMPLE_PATH
from mta.smtp.dispatch import dispatch_names as _dispatch_names
from mta.smtp.handler import Handler, peer_ip
from mta.smtp.security import ClientSession
from mta.smtp.settings import SessionHost, SessionSettings
from mta.smtp.validate import NULL_PATH, rough_path

log = logging.getLogger(__name__)

READER_LIMIT = MAX_TEXT_LINE + 1  # StreamReader limit: aiosmtpd reads longer commands in parts
DATA_CHUNK = 64 * 1024  # octets per read in DATA: per-read cost, not per-line, dominates
VERBATIM_COMMANDS = frozenset({"EHLO", "HELO"})  # RFC 2034: no enhanced codes in these replies
REPORTED_COMMANDS = frozenset({"MAIL", "RCPT", "DATA"})


@dataclass(frozen=True, slots=True)
class _Command:
    name: str
    argument: str | None
    sender: str | None  # the envelope's sender when the command arrived

    @property
    def line(self) -> str:
        return f"{self.name} {self.argument}" if self.argument else self.name


class SmtpSession(SMTP):
    """aiosmtpd's SMTP protocol for one client connection, with our limits and replies."""

    command_size_limit = MAX_COMMAND_LINE - len(CRLF)  # aiosmtpd measures without CRLF
    line_length_limit = READER_LIMIT

    def __dir__(self) -> list[str]:
        # aiosmtpd's __init__ scans dir(self) twice per connection (inspect.getmembers for the
        # AUTH mechanisms, then the smtp_* verbs), evaluating every property on the way: a fifth
        # of the CPU of a one-message session. Listing just what those scans look for keeps
        # their result and drops their cost.
        return _dispatch_names(type(self))

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _SIMPLE_PATH.match(arg)
        if match is None or (self.local_part_limit and len(match["local"]) > self.local_part_limit):
            result: tuple[str | None, str | None] = super()._getaddr(arg)
            return result
        return match[1], match["rest"] or ""

    def __init__(self, handler: Handler, settings: SessionSettings, host: SessionHost) -> None:
        self._settings = settings
        self._host = host
        self._command: _Command | None = None
        self._pending_close: Reply | None = None
        self._refusal: Reply | None = None
        self._closing = False
        self._errors = 0
        self._data_since: float | None = None  # loop time of the last DATA piece, in DATA
        self._data_held = 0  # octets of this session's DATA counted in the shared budget
        self._client: tuple[str, int] | None = None  # the real client, from a PROXY header
        super().__init__(
            handler,
            data_size_limit=None,  # SIZE is checked by our MAIL hook and DataReceiver
            enable_SMTPUTF8=settings.smtputf8,
            hostname=settings.hostname,
            ident="ESMTP",
            # Inside implicit TLS there is no STARTTLS, and AUTH is allowed from the start.
            tls_context=None if settings.implicit_tls else settings.tls_context,
            auth_require_tls=not settings.implicit_tls,
            timeout=settings.idle_timeout,
            loop=asyncio.get_running_loop(),
        )
        self.command_size_limits = CommandLimits()
        self._smtp_methods = Dispatch(self._smtp_methods, self._command_runner)

    @property
    def proxied(self) -> bool:
        """True on a PROXY listener: `peer_ip` is the proxy's until the header is read."""
        return self._settings.proxy_protocol

    @property
    def peer_ip(self) -> str:
        return peer_ip(self.session) if self.session is not None else ""

    def say_and_close(self, reply: Reply) -> None:
        """Send `reply` and close; nothing the client sent after is read as a command."""
        if self._closing or self.transport is None:
            return
        self._closing = True
        transport = cast(asyncio.Transport, self.transport)
        transport.write(f"{reply}\r\n".encode())
        transport.close()

    def request_close(self, reply: Reply) -> None:
        """Close now when between commands, else right after the current command's reply."""
        if self._command is None:
            self.say_and_close(reply)
        else:
            self._pending_close = reply

    def _close_quietly(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            cast(asyncio.Transport, self.transport).abort()

    # Connection life

    def _create_session(self) -> Session:
        return ClientSession(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # After STARTTLS this is called again, with TLS: aiosmtpd then starts a new Session
        # (RFC 3207 4.2: nothing from before is kept) and drops unread plaintext.
        first = self.transport is None
        super().connection_made(transport)
        assert self.session is not None
        if self._client is not None:
            self.session.peer = self._client  # type: ignore[assignment]  # a peername tuple
        if self._settings.implicit_tls:
            self.session.ssl = {"ssl_object": transport.get_extra_info("ssl_object")}
        if first:
            self._refusal = self._admit()

    def _admit(self) -> Reply | None:
        if not self._settings.proxy_protocol:
            return self._host.session_opened(self, self.peer_ip)
        if not proxy.from_proxy_network(self.peer_ip, self._settings.security.proxy_networks):
            log.warning("refusing %s on a PROXY listener: not a proxy network", self.peer_ip)
            return S554_PROXY_REFUSED
        return self._host.session_opened(self, self.peer_ip)

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            self._host.session_closed(self)  # may come twice (aiosmtpd's TLS failure path)

    async def _handle_client(self) -> None:
        if self._refusal is not None:
            self.say_and_close(self._refusal)
            return
        if self._settings.proxy_protocol and not await self._read_proxy_header():
            return
        await super()._handle_client()

    async def _read_proxy_header(self) -> bool:
        """Learn the real client from the PROXY header; False when the session must end."""
        assert self.session is not None and self.transport is not None
        self._reset_timeout(self._settings.proxy_timeout)
        peer = cast(tuple[str, int], self.session.peer)
        try:
            client = await proxy.read_client_address(self._reader, (self.peer_ip, int(peer[1])))
        except asyncio.CancelledError:  # aiosmtpd cancels us on EOF: the peer gave up
            self._close_quietly()
            raise
        if client is None:
            self._close_quietly()
            return False
        self._client = client
        self.session.peer = client  # type: ignore[assignment]  # a peername tuple, as aiosmtpd's
        refusal = self._host.session_identified(self, client[0])
        if refusal is not None:
            self.say_and_close(refusal)
            return False
        self._reset_timeout()
        return True

    def _timeout_cb(self) -> None:
        if self._data_since is not None:
            remaining = self._settings.data_timeout - (self.loop.time() - self._data_since)
            if remaining > 0:
                self._reset_timeout(remaining)
                return
        self.say_and_close(S421_IDLE_TIMEOUT)

    # Commands and replies

    def _command_runner(self, name: str, method: Any) -> Callable[[str | None], Awaitable[None]]:
        async def run(argument: str | None) -> None:
            await self._run_command(name, method, argument)

        if method is not None:
            # The texts aiosmtpd's HELP shows (`@syntax` attributes); functools.update_wrapper
            # would copy them too, at several times the cost, for every command.
            run.__dict__.update(method.__dict__)
        return run

    async def _run_command(self, name: str, method: Any, argument: str | None) -> None:
        if self._closing:
            return
        self._command = _Command(name, argument, self._envelope_sender())
        if isinstance(self.session, ClientSession):
            self.session.command_argument = argument
        try:
            if method is None:
                await self.push(str(S500_UNKNOWN_COMMAND))
            else:
                await method(argument)
        finally:
            self._command = None
            if self._pending_close is not None:
                self.say_and_close(self._pending_close)

    def _envelope_sender(self) -> str | None:
        sender = None if self.envelope is None else self.envelope.mail_from
        return None if sender is None else "" if sender == NULL_PATH else str(sender)

    async def push(self, status: AnyStr) -> None:
        if self._closing:
            return
        command = self._command
        if isinstance(status, bytes) or (command is not None and command.name in VERBATIM_COMMANDS):
            await super().push(status)
            return
        line = complete_reply(status)
        code = reply_code(line)
        if code >= 400 and command is not None and command.name in REPORTED_COMMANDS:
            self._report(command, Reply.parse(line))
        if code in COMMAND_ERROR_CODES:
            self._errors += 1
            if self._errors > self._settings.max_errors:
                self.say_and_close(S421_TOO_MANY_ERRORS)
                return
        await super().push(line)

    def _report(self, command: _Command, reply: Reply) -> None:
        is_mail, is_rcpt = command.name == "MAIL", command.name == "RCPT"
        try:
            self._settings.events.rejection(
                sender=rough_path(command.argument, "FROM:") if is_mail else command.sender,
                recipient=rough_path(command.argument, "TO:") if is_rcpt else None,
                reply=reply,
                command=command.line,
                peer_address=self.peer_ip,
            )
        except Exception:  # the log must never break a session
            log.exception("could not record a rejection")

    # AUTH (RFC 4954): aiosmtpd decodes PLAIN and LOGIN and sends the challenges; we check

    @syntax("AUTH <mechanism>")  # aiosmtpd's HELP text
    async def smtp_AUTH(self, arg: str) -> None:
        # RFC 4954 4: not during a mail transaction (from MAIL to the final dot or RSET). The
        # 503 leaves the transaction and the failed-AUTH budget as they were. aiosmtpd
        # itself answers a second AUTH after a successful one with 503 (5.5.1 added by push).
        if self.envelope is not None and self.envelope.mail_from is not None:
            await self.push(str(S503_AUTH_IN_TRANSACTION))
            return
        await super().smtp_AUTH(arg)

    async def auth_PLAIN(self, _: SMTP, args: list[str]) -> AuthResult:
        return await self._auth(super().auth_PLAIN, args)

    async def auth_LOGIN(self, _: SMTP, args: list[str]) -> AuthResult:
        return await self._auth(super().auth_LOGIN, args)

    def _authenticate(self, mechanism: str, auth_data: Any) -> AuthResult:
        # aiosmtpd's mechanisms end here, synchronously; bcrypt must not run on the loop, so
        # the credentials travel back to `_auth` for an asynchronous check.
        return AuthResult(success=False, handled=True, auth_data=auth_data)

    async def _auth(
        self, exchange: Callable[[SMTP, list[str]], Awaitable[AuthResult]], args: list[str]
    ) -> AuthResult:
        security, ip = self._settings.security, self.peer_ip
        if security.failures.exhausted(ip):
            self.say_and_close(S421_AUTH_FAILURES)
            return AuthResult(success=False, handled=True)
        given = (await exchange(self, args)).auth_data
        if not isinstance(given, LoginPassword):
            return AuthResult(success=False, handled=True)  # aiosmtpd answered (501, aborted)
        user = await check_login(security.users, security.failures, ip, given)
        if user is not None:
            return AuthResult(success=True, auth_data=user)
        if security.failures.exhausted(ip):
            self.say_and_close(S421_AUTH_FAILURES)
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535 5.7.8

    # DATA

    @syntax("DATA")  # aiosmtpd's HELP text
    async def smtp_DATA(self, arg: str | None) -> None:
        if await self._data_refused(arg):
            return
        await self.push(str(S354_START_INPUT))
        self._reset_timeout(self._settings.data_timeout)
        try:
            received = await self._receive()
            status = str(received.error) if received.error else await self._deliver(received)
        finally:
            self._hold(0)
            self._data_since = None
            self.envelope = self._create_envelope()  # RFC 5321 4.1.1.4: the transaction ends
        self._reset_timeout()
        await self.push(status)

    async def _data_refused(self, arg: str | None) -> bool:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return True
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push(str(S503_NEED_RCPT))
            return True
        if arg:
            await self.push(str(S501_DATA_SYNTAX))
            return True
        if self._settings.security.data.exhausted:
            log.warning(
                "DATA refused: %d octets of DATA in flight", self._settings.security.data.in_flight
            )
            await self.push(str(S452_DATA_IN_FLIGHT))
            return True
        return False

    def _hold(self, octets: int) -> None:
        """Keep this session's share of the DATA memory budget at `octets`."""
        self._settings.security.data.take(octets - self._data_held)
        self._data_held = octets

    async def _receive(self) -> DataReceiver:
        receiver = DataReceiver(self._settings.max_message_bytes)
        self._data_since = self.loop.time()
        try:
            while not receiver.feed(await self._read_chunk()):
                self._hold(receiver.stored)
                self._data_since = self.loop.time()
            self._hold(receiver.stored)
        except Exception:
            # Where the data ends is unknown now: close before anything is read as a command.
            self._closing = True
            if self.transport is not None:
                self.transport.close()
            raise
        self._unread(receiver.rest)
        return receiver

    async def _read_chunk(self) -> bytes:
        """Whatever the client has sent, up to DATA_CHUNK octets; the receiver finds the lines."""
        chunk: bytes = await self._reader.read(DATA_CHUNK)
        if not chunk:
            raise asyncio.IncompleteReadError(b"", None)  # the client went away inside DATA
        return chunk

    def _unread(self, rest: bytes) -> None:
        """Give back what the client pipelined after the end of data (RFC 2920).

        aiosmtpd's command loop reads from the same StreamReader, which has no public way to
        push bytes back; its buffer is a bytearray that every read takes from the front.
        """
        if rest:
            self._reader._buffer[:0] = rest  # type: ignore[attr-defined]

    async def _deliver(self, received: DataReceiver) -> str:
        assert self.envelope is not None
        self.envelope.content = self.envelope.original_content = received.content
        return str(await self._call_handler_hook("DATA"))
