"""Reading the DATA section (RFC 5321 4.1.1.4), without I/O.

The session hands over the stream in chunks of any size, cut anywhere. The receiver finds where
the data ends, undoes dot-stuffing and enforces the size and line-length limits with a handful
of bytes operations per chunk (find, replace, rfind every ~1000 octets), never a Python step
per line. Memory stays bounded: once a limit is exceeded the rest is read and dropped, never
stored. The bytes the client sent after the end of data (pipelined commands) are kept in `rest`
for the session to give back to the command reader.

End of data is only CRLF "." CRLF, where the CRLF that ended the DATA command starts the first
line: the receiver works on the stream as if it began with that CRLF, so a first line "." ends
the data and a first line ".x" is unstuffed like any other. A bare CR or LF never ends a line
here, so the smuggling sequences (LF "." LF, LF "." CRLF, CR "." CR, CRLF "." CR, CR "." CRLF)
stay inside the message and whatever follows them is message text, never a command.

Chunk boundaries: the receiver holds back the longest tail of the stream that could begin the
end-of-data sequence (at most "\r\n.\r", 4 octets) and decides it with the next chunk. Every
other pattern it looks for (CRLF ".", CRLF) is a prefix of that sequence and starts with CR,
so none of them is ever cut in two.
"""

from __future__ import annotations

from mta.replies import S500_LINE_TOO_LONG, S552_MESSAGE_TOO_BIG, Reply

CRLF = b"\r\n"
END_OF_DATA = b"\r\n.\r\n"  # RFC 5321 4.1.1.4: a line holding only "."
STUFFED_LINE_START = b"\r\n."  # RFC 5321 4.5.2: the first "." of a line is a transparency dot
MAX_TEXT_LINE = 1000  # RFC 5321 4.5.3.1.6: octets including CRLF, not counting a stuffed dot
# Tails of a chunk that may be the start of END_OF_DATA, longest first.
_PARTIAL_ENDS = tuple(END_OF_DATA[:length] for length in range(len(END_OF_DATA) - 1, 0, -1))


class DataReceiver:
    """Feed chunks until `feed` returns True; then `error` or `content` is the outcome."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        # Undecided octets; the CRLF of the DATA command is the start of the first line.
        self._held = CRLF
        self._not_content = len(CRLF)  # leading octets of the stream that are that CRLF
        self._pieces: list[bytes] = []
        self._size = 0
        self._stored = 0
        self._line_length = 0  # octets of the current, unfinished line so far
        self.error: Reply | None = None
        self.rest = b""  # what followed the end of data: pipelined commands, not content

    def feed(self, chunk: bytes) -> bool:
        """Take the next chunk; True when it held the end of data (then see `rest`)."""
        data = self._held + chunk
        end = data.find(END_OF_DATA)
        if end >= 0:
            self._take(data[: end + len(CRLF)])  # that CRLF ends the last line of content
            self.rest = data[end + len(END_OF_DATA) :]
            self._held = b""
            return True
        cut = len(data) - _partial_end_length(data)
        self._take(data[:cut])
        self._held = data[cut:]
        return False

    @property
    def size(self) -> int:
        """Octets of content received so far (after dot-unstuffing)."""
        return self._size

    @property
    def stored(self) -> int:
        """Octets of content held in memory (none once a limit was exceeded)."""
        return self._stored

    @property
    def content(self) -> bytes:
        return b"".join(self._pieces)

    def _take(self, stream: bytes) -> None:
        """Account for a decided part of the stream: whole stuffed dots, never END_OF_DATA."""
        if not stream:
            return
        text = stream.replace(STUFFED_LINE_START, CRLF)  # removes exactly one dot per line
        if self._not_content:  # `stream` begins with all of the DATA command's CRLF
            text = text[self._not_content :]
            self._not_content = 0
        self._size += len(text)
        if self.error is not None:
            return  # past a limit: only looking for the end of data
        if self._line_too_long(text):
            self._fail(S500_LINE_TOO_LONG)
        elif self._size > self._max_bytes:
            self._fail(S552_MESSAGE_TOO_BIG)
        else:
            self._pieces.append(text)
            self._stored += len(text)

    def _line_too_long(self, text: bytes) -> bool:
        """Whether a line reaches past MAX_TEXT_LINE in `text`; tracks the unfinished line.

        Jumps from line start to the last CRLF within MAX_TEXT_LINE octets: every line in
        between fits, so the cost is one rfind per ~1000 octets, not one step per line.
        """
        start, carried = 0, self._line_length
        while True:
            crlf = text.rfind(CRLF, start, start + MAX_TEXT_LINE - carried)
            if crlf < 0:
                self._line_length = carried + len(text) - start
                return self._line_length > MAX_TEXT_LINE
            start, carried = crlf + len(CRLF), 0

    def _fail(self, reply: Reply) -> None:
        if self.error is None:  # the first problem is the one reported
            self.error = reply
            self._pieces.clear()
            self._stored = 0


def _partial_end_length(data: bytes) -> int:
    """Octets at the end of `data` that may be the start of END_OF_DATA."""
    for partial in _PARTIAL_ENDS:
        if data.endswith(partial):
            return len(partial)
    return 0
