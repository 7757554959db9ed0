"""One JSON request to a node's HTTP API over `urllib.request`, with errors made readable.

Synchronous on purpose: a command line makes one or two requests and exits, so an event loop
would only add start-up time.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 30.0
MAX_ERROR_TEXT = 300  # characters of a server's error body shown on one line


class ClientError(Exception):
    """A request that did not succeed.

    `status` is the HTTP status, or None when no HTTP answer arrived (refused, timed out, bad
    URL); `message` is one line naming the problem, never containing credentials.
    """

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message if self.status is None else f"{self.status}: {self.message}"


def parse_endpoint(endpoint: str) -> str:
    """The endpoint without a trailing slash; ValueError if it is not an http(s) base URL."""
    parts = urllib.parse.urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid endpoint {redact(endpoint)!r} (use e.g. {DEFAULT_ENDPOINT})")
    if parts.username is not None or parts.password is not None:
        # A password in the URL ends up in shell history and process listings.
        raise ValueError("put credentials in --user/MTA_PASSWORD or --token-file, not the URL")
    if parts.query or parts.fragment:
        raise ValueError(f"invalid endpoint {endpoint!r}: no query or fragment allowed")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ValueError(f"invalid endpoint {endpoint!r}: bad port") from None
    return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/")))


def redact(url: str) -> str:
    """`url` with any user:password@ removed, for messages."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def authorization(
    user: str | None = None, password: str | None = None, token: str | None = None
) -> str | None:
    """The Authorization header value: Bearer for a token, Basic for user + password."""
    if token is not None:
        return f"Bearer {token}"
    if user is None:
        return None
    pair = f"{user}:{password or ''}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


class Transport:
    """Sends JSON requests to one endpoint and decodes JSON answers."""

    def __init__(self, endpoint: str, *, auth: str | None, timeout: float) -> None:
        self.endpoint = parse_endpoint(endpoint)
        self._auth = auth
        self._timeout = timeout
        # No proxies from the environment: the admin API lives on the node's own network, and
        # an http_proxy meant for the internet would swallow loopback requests.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Any:
        """Decoded JSON of a 2xx answer (None for an empty body, text if not JSON)."""
        request = self._build(method, path, query, body)
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return _decode(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                raise ClientError(exc.code, _error_text(exc.code, exc.read())) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise ClientError(None, self._unreachable(exc)) from None

    def _build(
        self, method: str, path: str, query: Mapping[str, str] | None, body: Any
    ) -> urllib.request.Request:
        url = self.endpoint + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self._auth is not None:
            headers["Authorization"] = self._auth
        return urllib.request.Request(url, data=data, headers=headers, method=method)

    def _unreachable(self, exc: BaseException) -> str:
        return f"cannot reach {self.endpoint}: {_reason(exc, self._timeout)}"


def _reason(exc: BaseException, timeout: float) -> str:
    """A short lower-case cause for a failed connection ("connection refused")."""
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without an answer"
    return str(exc) or type(exc).__name__


def _decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _error_text(status: int, raw: bytes) -> str:
    """One line from an error body: a JSON `error`/`message`/`detail`, else the text itself."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("error", "message", "detail", "reason"):
            if isinstance(data.get(key), str):
                text = data[key]
                break
    elif isinstance(data, str):
        text = data
    text = " ".join(text.split())
    if not text:
        return http.client.responses.get(status, "error").lower()
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 3] + "..."
