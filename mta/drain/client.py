"""The sending side's HTTP client: hand one message to a peer's `/api/internal/accept/v1`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import aiohttp

from mta.client.transport import authorization, parse_endpoint
from mta.drain.wire import ACCEPT_PATH, CONTENT_TYPE, encode

DEFAULT_REQUEST_TIMEOUT: Final = 30.0
AUTH_STATUSES: Final = frozenset({401, 403})
# Worth another try: the peer is busy, starting, stopping, or its spool is full for now.
RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
MAX_REASON_CHARS: Final = 200


class PeerError(Exception):
    """The peer did not take a message; `status` is None when no HTTP answer came."""

    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(reason if status is None else f"{status}: {reason}")
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth retrying later (no answer, or a busy/unavailable peer)."""
        return self.status is None or self.status in RETRY_STATUSES

    @property
    def unauthorized(self) -> bool:
        """Our credentials are refused: no other message will get through either."""
        return self.status in AUTH_STATUSES


class PeerClient:
    """Posts handovers to one peer; use as an async context manager."""

    def __init__(
        self,
        base_url: str,
        *,
        auth_header: str | None = None,
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        self.url = parse_endpoint(base_url) + ACCEPT_PATH  # ValueError for a bad URL
        self._headers = {"Content-Type": CONTENT_TYPE, "Accept": "application/json"}
        if auth_header is not None:
            self._headers["Authorization"] = auth_header
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PeerClient:
        # No proxy from the environment: the peer is on the cluster's own network.
        self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def hand_over(self, msg_id: str, meta: Mapping[str, Any], data: bytes) -> bool:
        """Send one message; True when the peer stored it now, False when it already had it.

        Raises PeerError when the peer did not answer 200.
        """
        assert self._session is not None, "use PeerClient as an async context manager"
        body = encode(msg_id, meta, data)
        try:
            async with self._session.post(self.url, data=body, headers=self._headers) as response:
                text = await response.text(errors="replace")
                if response.status != 200:
                    raise PeerError(response.status, _one_line(text))
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise PeerError(None, f"{self.url}: {type(exc).__name__}: {exc}".rstrip(": ")) from None
        if not isinstance(answer, dict) or answer.get("id") != msg_id:
            raise PeerError(None, f"{self.url}: unexpected answer {_one_line(text)!r}")
        return bool(answer.get("stored"))


def auth_header(*, user: str | None, password: str | None, token_file: Path | None) -> str | None:
    """The Authorization header for a user + password or a token file (its first line)."""
    if token_file is not None:
        return authorization(token=read_first_line(token_file))
    if user is not None:
        return authorization(user, password or "")
    return None


def read_first_line(path: Path) -> str:
    """A secret file's first line (editors add a newline); OSError or ValueError if empty."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0]:
        raise ValueError(f"{path} is empty")
    return lines[0]


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."
