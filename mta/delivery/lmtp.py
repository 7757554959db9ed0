"""LMTP (RFC 2033) sessions, for routes that hand mail to a local delivery agent such as
Mailman 3's LMTP runner (port 8024) over TCP or a unix socket.

LMTP is SMTP with LHLO instead of EHLO and, after the final dot, one reply per accepted
recipient in RCPT order (RFC 2033 4.2): so a 4xx for one list is retried, a 5xx bounced, and
the others delivered, as the SMTP client does with RCPT replies.
"""

from __future__ import annotations

import asyncio

from aiosmtplib import SMTPResponse, SMTPServerDisconnected

from mta.replies import Reply

from . import replies as r
from .client import SmtpSession
from .pipeline import MalformedReply
from .reply_reader import _ReplyReader
from .settings import SERVICE_CLOSING, _ProtocolError
from .transaction import Transaction, encode_data
from .types import Job

LHLO = b"LHLO"


class LmtpSession(SmtpSession):
    """An LMTP session; everything but greeting and data is the SMTP session's (lock-step)."""

    _lmtp_reader: _ReplyReader | None = None

    async def _hello(self) -> None:
        answers: list[SMTPResponse] = []

        async def lhlo() -> SMTPResponse:
            name = self._settings.ehlo_name.encode("ascii")
            answer = await self._smtp.execute_command(LHLO, name, timeout=None)
            answers.append(answer)
            return answer

        reply = await self._step("LHLO", self._timeouts.ehlo, lhlo())
        if not 200 <= reply.code < 300:
            raise self._failure(r.refused_to_talk(self.peer, "LHLO", reply), "LHLO")
        self._smtp.last_ehlo_response = answers[0]  # the extensions; no EHLO will be sent
        self.pipelining = False
        if self._smtp.protocol is not None and self._lmtp_reader is None:
            # aiosmtplib drops replies that arrive together: the per-recipient replies do.
            self._lmtp_reader = _ReplyReader.install(self._smtp.protocol)

    async def _run(self, txn: Transaction, job: Job) -> None:
        await self._run_in_steps(txn, job)  # the replies after the dot come one per recipient

    async def _data(self, txn: Transaction, job: Job) -> None:
        if not await self._data_accepted(txn):
            return
        txn.begin(".")
        protocol, reader = self._smtp.protocol, self._lmtp_reader
        if protocol is None or reader is None:
            raise SMTPServerDisconnected("Connection lost")
        with reader:
            protocol.write(encode_data(job.data))
            for recipient in list(txn.accepted):
                reply = await self._dot_reply(reader)
                if self._closed_by(txn, reply):
                    return
                txn.on_lmtp_dot(recipient, reply)
        self._needs_rset = False  # RFC 5321 4.1.1.4: the final replies end the transaction

    async def _dot_reply(self, reader: _ReplyReader) -> Reply:
        """One recipient's reply after the dot, each within data_dot_timeout."""
        try:
            async with asyncio.timeout(self._timeouts.data_dot):
                code, message = await reader.next()
        except MalformedReply as error:
            raise _ProtocolError(r.protocol_error(self.peer, ".", str(error))) from None
        if not 200 <= code < 600:
            raise _ProtocolError(r.protocol_error(self.peer, ".", message))
        if code == SERVICE_CLOSING:
            self.abort()  # RFC 5321 3.8: the server closes the channel
        return r.from_response(code, message)
