"""Reading the DATA section (RFC 5321 4.1.1.4), without I/O.

The session reads the stream in pieces: a line ending in CRLF, or, for a line longer than the
stream reader's limit, part of one. A CRLF never spans two pieces. The receiver decides where
the data ends, undoes dot-stuffing and enforces the size and line-length limits while keeping
memory bounded: once a limit is exceeded the rest is read and dropped, never stored.

End of data is only CRLF "." CRLF. A bare CR or LF never ends a line here, so the smuggling
sequences (LF "." LF, LF "." CRLF, CR "." CR, CRLF "." CR, CR "." CRLF) stay inside the message
and whatever follows them is message text, never a command.
"""

from __future__ import annotations

from mta.replies import S500_LINE_TOO_LONG, S552_MESSAGE_TOO_BIG, Reply

CRLF = b"\r\n"
END_OF_DATA = b".\r\n"  # at the start of a line: RFC 5321 4.1.1.4
MAX_TEXT_LINE = 1000  # RFC 5321 4.5.3.1.6: octets including CRLF, not counting a stuffed dot


class DataReceiver:
    """Feed pieces until `feed` returns True; then `error` or `content` is the outcome."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._pieces: list[bytes] = []
        self._size = 0
        self._line_length = 0
        self._at_line_start = True
        self.error: Reply | None = None

    def feed(self, piece: bytes) -> bool:
        """Take one piece; True when it was the end-of-data line (which is not content)."""
        if self._at_line_start:
            if piece == END_OF_DATA:
                return True
            if piece.startswith(b"."):
                piece = piece[1:]  # RFC 5321 4.5.2: remove exactly one transparency dot
        complete = piece.endswith(CRLF)
        self._line_length += len(piece)
        self._size += len(piece)
        if self._line_length > MAX_TEXT_LINE:
            self._fail(S500_LINE_TOO_LONG)
        if self._size > self._max_bytes:
            self._fail(S552_MESSAGE_TOO_BIG)
        if self.error is None:
            self._pieces.append(piece)
        if complete:
            self._line_length = 0
        self._at_line_start = complete
        return False

    @property
    def size(self) -> int:
        """Octets of content received so far (after dot-unstuffing)."""
        return self._size

    @property
    def content(self) -> bytes:
        return b"".join(self._pieces)

    def _fail(self, reply: Reply) -> None:
        if self.error is None:  # the first problem is the one reported
            self.error = reply
            self._pieces.clear()
