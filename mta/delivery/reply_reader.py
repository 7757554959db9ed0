"""Every reply of a pipelined group, read off the transport (RFC 2920, RFC 2033 4.2)."""

from __future__ import annotations

import asyncio
from collections import deque

from aiosmtplib import SMTPServerDisconnected
from aiosmtplib.protocol import SMTPProtocol

from .pipeline import MalformedReply, take_reply


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
