"""The aiosmtpd handler: thin hooks that call the pure validators and the shared accept path.

aiosmtpd passes its session and envelope objects; the hooks read the few fields they need and,
when they accept, fill the envelope themselves (aiosmtpd leaves that to a hook that exists).
Replies are returned as strings because aiosmtpd wants them so; the session reports every
4xx/5xx among them as a Rejection.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass
from typing import Literal

from aiosmtpd.smtp import SMTP, Envelope, Session, TLSSetupException

from mta.config import SmtpConfig
from mta.replies import (
    S250_QUEUED,
    S250_RECIPIENT_OK,
    S250_SENDER_OK,
    S451_LOCAL_ERROR,
    S451_MESSAGE_RATE,
    S452_SPOOL_FULL,
    S550_BARE_LINE_ENDINGS,
    S553_SENDER_NOT_ALLOWED,
    MtaError,
    Reply,
)
from mta.smtp import headers, validate
from mta.smtp.dispatch import HANDLER_PREFIXES, dispatch_names
from mta.smtp.security import Security, command_argument, session_user
from mta.smtp.types import AcceptPath, Inbound

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Policy:
    """The parts of SmtpConfig the hooks decide with."""

    hostname: str
    relay_networks: tuple[validate.Network, ...]
    max_message_bytes: int
    max_recipients: int
    bare_line_endings: Literal["reject", "normalize"]
    smtputf8: bool

    @classmethod
    def from_config(cls, config: SmtpConfig, hostname: str) -> Policy:
        return cls(
            hostname=hostname,
            relay_networks=validate.parse_networks(config.relay_networks),
            max_message_bytes=config.max_message_bytes,
            max_recipients=config.max_recipients,
            bare_line_endings=config.bare_line_endings,
            smtputf8=config.smtputf8,
        )


AUTH_MECHANISMS = "AUTH LOGIN PLAIN"  # RFC 4954; aiosmtpd's built-in PLAIN and LOGIN


def ehlo_lines(policy: Policy, *, starttls: bool, auth: bool = False) -> list[str]:
    """The EHLO reply (RFC 5321 4.1.1.1) with the extensions we support."""
    keywords = [f"SIZE {policy.max_message_bytes}", "8BITMIME", "PIPELINING"]
    keywords.append("ENHANCEDSTATUSCODES")
    if policy.smtputf8:
        keywords.append("SMTPUTF8")
    if starttls:
        keywords.append("STARTTLS")
    if auth:  # only under TLS (RFC 4954 4, 14): plaintext passwords are never invited
        keywords.append(AUTH_MECHANISMS)
    lines = [policy.hostname, *keywords]
    return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]


def peer_ip(session: Session) -> str:
    """The client's IP from an aiosmtpd Session ("" when the transport has none)."""
    peer: object = session.peer  # typed str by aiosmtpd, but it is the socket's peername
    return validate.normalize_ip(str(peer[0])) if isinstance(peer, tuple) else ""


class Handler:
    """aiosmtpd hooks for the MTA's SMTP front end."""

    def __dir__(self) -> list[str]:
        # aiosmtpd's SMTP.__init__ runs inspect.getmembers and dir() over the handler for every
        # connection (6.6% of the CPU with a new connection per message): list only the hooks.
        return dispatch_names(type(self), HANDLER_PREFIXES)

    def __init__(self, policy: Policy, accept: AcceptPath, security: Security) -> None:
        self._policy = policy
        self._accept = accept
        self._security = security

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        # aiosmtpd offers STARTTLS exactly when a TLS context is set and TLS is not yet on,
        # and AUTH exactly when TLS is on.
        auth = self._security.users.configured and any(
            line.startswith("250-AUTH") for line in responses
        )
        return ehlo_lines(self._policy, starttls="250-STARTTLS" in responses, auth=auth)

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        session.host_name = hostname
        return f"250 {self._policy.hostname}"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self._mail_problem(
            address, options, smtputf8=bool(envelope.smtp_utf8)
        ) or self._sender_problem(session, address)
        if reply is not None:
            return str(reply)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return str(S250_SENDER_OK)

    def _mail_problem(self, address: str, options: list[str], *, smtputf8: bool) -> Reply | None:
        reason = self._accept.unhealthy_reason()
        if reason is not None:
            log.info("refusing mail: %s", reason)
            return S452_SPOOL_FULL
        return validate.sender_problem(address, smtputf8=smtputf8) or validate.size_problem(
            validate.declared_size(options), self._policy.max_message_bytes
        )

    def _sender_problem(self, session: Session, address: str) -> Reply | None:
        """Sender policy (553 5.7.1), then the message rate (451 4.7.1), which counts it."""
        user = session_user(session)
        sender = "" if address == validate.NULL_PATH else address
        if user is not None and not self._security.senders.permits(user, sender):
            log.info("user %s may not send as %s", user, sender)
            return S553_SENDER_NOT_ALLOWED
        if not self._security.rates.allow_message(user=user, ip=peer_ip(session)):
            log.info("message rate limit: %s", user or peer_ip(session))
            return S451_MESSAGE_RATE
        return None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = (
            validate.mailbox_problem(address, smtputf8=bool(envelope.smtp_utf8))
            or validate.relay_problem(
                peer_ip(session),
                self._policy.relay_networks,
                authenticated=session_user(session) is not None,
                recipient=address,
                raw_path=validate.rough_path(command_argument(session), "TO:"),
            )
            or validate.recipient_count_problem(len(envelope.rcpt_tos), self._policy.max_recipients)
        )
        if reply is None:  # the suppression list, last: it may ask Redis
            reply = await self._accept.recipient_problem(address)
        if reply is not None:
            return str(reply)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return str(S250_RECIPIENT_OK)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)  # aiosmtpd's decode_data is off
        if validate.has_bare_line_endings(content):
            if self._policy.bare_line_endings == "reject":
                return str(S550_BARE_LINE_ENDINGS)
            content = validate.normalize_line_endings(content)
        return str(await self._accept_message(self._inbound(session, envelope, content)))

    async def _accept_message(self, inbound: Inbound) -> Reply:
        try:
            message_id = await self._accept.accept(inbound)
        except asyncio.CancelledError:
            raise
        except MtaError as exc:
            # A success reply here would acknowledge mail that was not stored.
            return S451_LOCAL_ERROR if exc.reply.is_success else exc.reply
        except Exception:
            log.exception("accept failed for a message from %s", inbound.peer_address)
            return S451_LOCAL_ERROR
        return S250_QUEUED.with_text(f"OK queued as {message_id}")

    def _inbound(self, session: Session, envelope: Envelope, content: bytes) -> Inbound:
        ip, helo, smtputf8 = peer_ip(session), str(session.host_name), bool(envelope.smtp_utf8)
        protocol = headers.with_protocol(
            extended=bool(session.extended_smtp),
            tls=session.ssl is not None,
            authenticated=bool(session.authenticated),
            smtputf8=smtputf8,
        )
        received = headers.received_header(
            helo=helo,
            peer_ip=ip,
            hostname=self._policy.hostname,
            protocol=protocol,
            queue_id=headers.new_queue_id(),
        )
        data = received + headers.ensure_message_id_and_date(content, self._policy.hostname)
        sender = str(envelope.mail_from)
        return Inbound(
            sender="" if sender == validate.NULL_PATH else sender,
            recipients=tuple(str(rcpt) for rcpt in envelope.rcpt_tos),
            data=data,
            reception_protocol=protocol,
            peer_address=ip,
            peer_name=helo,
            smtputf8=smtputf8,
        )

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd calls this when a command fails unexpectedly: our trouble, so 451."""
        if isinstance(error, TLSSetupException):  # the client's handshake failed; no reply
            log.info("TLS handshake failed: %r", error.__cause__)
            return str(S451_LOCAL_ERROR)
        log.error("SMTP session error", exc_info=error)
        return str(S451_LOCAL_ERROR)


# aiosmtpd's SMTP.__init__ calls inspect.signature(handler.handle_EHLO) for every connection
# (to tell its 4- and 5-argument hooks apart): 6% of the CPU with a new connection per
# message. inspect reads a function's `__signature__` before computing one.
Handler.handle_EHLO.__signature__ = inspect.signature(Handler.handle_EHLO)  # type: ignore[attr-defined]
