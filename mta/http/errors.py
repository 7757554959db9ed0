"""HTTP error answers: an exception that carries the status and reason the client gets.

Like KumoMTA, every refusal is a short plain-text reason (`Missing Authorization header`,
`shutting down`, `Failed to parse the request body as JSON: ... at line 1 column 9`), so `curl`
shows it as is and scripts can match on it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler

logger = logging.getLogger(__name__)

TEXT_TYPE = "text/plain"
INTERNAL_ERROR_REASON = "internal error, try again later"


class HttpError(Exception):
    """Refuse a request: `status` with `reason` as the text body (and optional headers)."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})


def text_response(status: int, text: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """A `text/plain; charset=utf-8` answer."""
    return web.Response(
        status=status, text=text, content_type=TEXT_TYPE, charset="utf-8", headers=headers
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn HttpError into its answer and anything unexpected into a logged 500."""
    try:
        return await handler(request)
    except HttpError as exc:
        return text_response(exc.status, exc.reason, exc.headers)
    except web.HTTPException:
        raise  # aiohttp's own answers (404, 405, 413 from request.read())
    except Exception:
        # The details go to the log only: they may contain message content.
        logger.exception("%s %s failed", request.method, request.path)
        return text_response(web.HTTPInternalServerError.status_code, INTERNAL_ERROR_REASON)
