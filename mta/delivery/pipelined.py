"""The pipelined transaction (RFC 2920): [RSET,] MAIL, every RCPT and DATA in one write,
their replies read in order by `_Replies`, then the message in a second write.

`SmtpSession` runs a transaction here when the server offers PIPELINING; the replies come
through the session's `_ReplyReader`, which aiosmtplib would otherwise drop when several
arrive in one read.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiosmtplib import SMTPServerDisconnected

from mta.replies import S553_BAD_ADDRESS, Reply

from . import replies as r
from .pipeline import DATA, RSET, MalformedReply, mail_command, rcpt_command
from .reply_reader import _ReplyReader
from .settings import SERVICE_CLOSING, START_MAIL_INPUT, _ProtocolError
from .transaction import END_OF_DATA, Transaction, encode_data, mail_options
from .types import Job

if TYPE_CHECKING:
    from .client import SmtpSession


def envelope_group(
    session: SmtpSession, txn: Transaction, job: Job
) -> tuple[list[bytes], list[str]]:
    """The command lines of the group before DATA, and the recipients they name.

    Recipients that cannot be sent are settled here; no line at all when nothing
    would be left to send (then neither MAIL nor RCPT goes on the wire).
    """
    refusal = session._refusal(job)
    if refusal is not None:
        txn.refuse(txn.recipients, refusal, "MAIL")
        return [], []
    options = mail_options(job, session._smtp.esmtp_extensions)
    try:
        mail = mail_command(job.sender, options, "utf-8" if "SMTPUTF8" in options else "ascii")
    except ValueError as error:
        txn.refuse(txn.recipients, S553_BAD_ADDRESS.with_text(str(error)), "MAIL")
        return [], []
    lines = [RSET, mail] if session._needs_rset else [mail]
    named: list[str] = []
    utf8 = session._smtp.supports_extension("smtputf8")
    for recipient in txn.recipients:
        ascii_only = recipient.isascii()
        if not ascii_only and not utf8:
            txn.refuse([recipient], r.smtputf8_required(session.peer), "RCPT")
            continue
        try:
            lines.append(rcpt_command(recipient, "ascii" if ascii_only else "utf-8"))
        except ValueError as error:
            txn.refuse([recipient], S553_BAD_ADDRESS.with_text(str(error)), "RCPT")
            continue
        named.append(recipient)
    return (lines, named) if named else ([], [])


async def run_pipelined(
    session: SmtpSession, txn: Transaction, job: Job, reader: _ReplyReader
) -> None:
    """RFC 2920 3.1: [RSET,] MAIL, every RCPT and DATA in one write, the replies read
    in order, then the message (if DATA got 354) in a second write.

    Timeouts: one `asyncio.timeout` for the whole transaction, whose deadline is
    moved to "now + that command's phase timeout" each time a reply has to be
    waited for (replies already read cost nothing). So every reply gets exactly the
    time it gets in lock-step; neither the sum of the phase timeouts (100 RCPTs at
    300 s would let a dead server hold the worker for hours) nor their maximum (a
    server that spends a while on each RCPT would be cut off) does that.
    """
    lines, named = envelope_group(session, txn, job)
    if not lines:
        return
    protocol = session._smtp.protocol
    if protocol is None:
        raise SMTPServerDisconnected("Connection lost")
    lines.append(DATA)
    with reader:
        async with asyncio.timeout(None) as deadline:
            protocol.write(b"".join(lines))
            replies = _Replies(session, txn, reader, deadline)
            if session._needs_rset:
                await replies.reset()
            if await replies.envelope(named):
                await replies.content(job.data)


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
