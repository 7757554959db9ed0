"""`POST /api/internal/accept/v1`: a draining peer hands over one queued message.

Who may call it is the server's business: like `/api/admin/*`, a trusted address or a user in
`[http] admin_users` (the draining node's `[node] drain_user` / `drain_token_file`). The body
is `mta.drain.wire`; answers:

- 200 `{"id": ..., "stored": true}` once the message is durable here, `"stored": false` when
  it was already accepted before (a retry); either way the sender may remove its copy;
- 400 a body that cannot be accepted as sent (the sender keeps its copy and reports it);
- 503 the node cannot store now (starting, stopping, spool unavailable): try again later.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from mta.drain.receiver import HandoverReceiver
from mta.drain.wire import ACCEPT_PATH, WireError, decode
from mta.http.body import check_json_request, read_body
from mta.http.errors import HttpError
from mta.replies import TransientError

# The body carries a whole message in base64 (4/3 of its size) plus its meta.
BASE64_NUMERATOR, BASE64_DENOMINATOR = 4, 3
META_ALLOWANCE_BYTES = 1024 * 1024


def max_handover_bytes(max_message_bytes: int) -> int:
    """The body limit for messages up to `max_message_bytes` (signing and Received headers
    make a stored message a little larger than what the client sent: twice is plenty)."""
    return 2 * max_message_bytes * BASE64_NUMERATOR // BASE64_DENOMINATOR + META_ALLOWANCE_BYTES


def drain_routes(receiver: HandoverReceiver, *, max_body_bytes: int) -> list[web.RouteDef]:
    """The handover endpoint, reading bodies up to `max_body_bytes`."""

    async def accept(request: web.Request) -> web.Response:
        check_json_request(request)
        body = await read_body(request, max_body_bytes)
        try:
            handover = decode(body)
        except WireError as exc:
            raise HttpError(400, f"Invalid handover: {exc}") from None
        try:
            stored = await receiver.accept(handover, request.remote or "")
        except TransientError as exc:
            raise HttpError(503, str(exc)) from None
        answer = {"id": handover.id, "stored": stored}
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    return [web.post(ACCEPT_PATH, accept)]
