"""The load generators: Postfix's `smtp-source`, and an async client of the HTTP inject API."""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SENDER = "sender@example.org"
RECIPIENT = "rcpt@example.com"
CLIENT_NAME = "load.bench.localdomain"  # smtp-source -M: HELO name, so no hostname lookup
INJECT_PATH = "/api/inject/v1"
MAX_ERRORS_KEPT = 5


@dataclass(slots=True)
class LoadResult:
    """What the load generator saw; `finished` is a time.monotonic() value."""

    finished: float
    accepted: int  # messages the MTA acknowledged (smtp-source: requested, if it exited 0)
    errors: list[str] = field(default_factory=list)


def smtp_source_args(
    address: str, *, messages: int, sessions: int, size: int, reuse: bool
) -> list[str]:
    binary = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    args = [binary, "-s", str(sessions), "-l", str(size), "-m", str(messages)]
    if reuse:
        args.append("-d")  # don't disconnect: the next message on the same connection
    return [*args, "-f", SENDER, "-t", RECIPIENT, "-M", CLIENT_NAME, address]


async def run_smtp_source(
    args: list[str], messages: int, log: Path, limit_seconds: float
) -> LoadResult:
    """Run smtp-source to completion (or the time limit); it aborts on the first non-2xx reply."""
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
        try:
            async with asyncio.timeout(limit_seconds):
                returncode = await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
            return LoadResult(
                time.monotonic(), 0, [f"smtp-source still running after {limit_seconds}s"]
            )
    finished = time.monotonic()
    if returncode != 0:
        text = await asyncio.to_thread(log.read_text, errors="replace")
        tail = text.strip().splitlines()[-3:]
        return LoadResult(finished, 0, [f"smtp-source exit {returncode}: {' | '.join(tail)}"])
    return LoadResult(finished, messages)


# Templated builder content: subject, text and HTML bodies all use per-recipient variables, so
# every recipient gets its own rendered message of about 2 KB.
TEXT_BODY = (
    "Hello {{ name }},\n\nyour order {{ order }} from {{ shop }} has shipped to {{ email }}.\n"
    + "".join(
        f"Item {i}: a line of order detail that pads the body to a realistic size.\n"
        for i in range(8)
    )
    + "\nThanks for shopping with {{ shop }}.\n"
)
HTML_BODY = (
    "<html><body><p>Hello <b>{{ name }}</b>,</p><p>your order {{ order }} has shipped.</p><ul>"
    + "".join(f"<li>Item {i}: a line of order detail that pads the body.</li>" for i in range(8))
    + "</ul><p>{{ shop }}</p></body></html>"
)


def inject_payload(batch: int, recipients: int) -> dict[str, Any]:
    """One inject request: `recipients` recipients, builder content, Jinja substitutions."""
    first = batch * recipients
    return {
        "envelope_sender": SENDER,
        "content": {
            "subject": "Order {{ order }} has shipped, {{ name }}",
            "from": {"email": SENDER, "name": "{{ shop }}"},
            "reply_to": {"email": "support@example.org", "name": "Support"},
            "text_body": TEXT_BODY,
            "html_body": HTML_BODY,
        },
        "substitutions": {"shop": "Example Shop"},
        "recipients": [
            {
                "email": f"rcpt{n}@example.com",
                "name": f"Recipient {n}",
                "substitutions": {"order": f"{n:08d}"},
            }
            for n in range(first, first + recipients)
        ],
    }


async def run_http_inject(
    base_url: str, *, messages: int, recipients: int, sessions: int, limit_seconds: float
) -> LoadResult:
    """POST ceil(messages / recipients) inject requests over `sessions` concurrent connections."""
    import aiohttp  # the project's dependency; only this scenario needs it

    batches = -(-messages // recipients)
    payloads = [
        inject_payload(b, min(recipients, messages - b * recipients)) for b in range(batches)
    ]
    result = LoadResult(0.0, 0)
    next_batch = iter(range(batches))
    connector = aiohttp.TCPConnector(limit=sessions)
    client_timeout = aiohttp.ClientTimeout(total=limit_seconds)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def worker() -> None:
            for batch in next_batch:
                await _post(session, base_url + INJECT_PATH, payloads[batch], result)

        try:
            async with asyncio.timeout(limit_seconds):
                await asyncio.gather(*(worker() for _ in range(sessions)))
        except TimeoutError:
            _keep(result, f"HTTP load still running after {limit_seconds}s")
    result.finished = time.monotonic()
    return result


async def _post(session: Any, url: str, payload: dict[str, Any], result: LoadResult) -> None:
    import aiohttp

    try:
        async with session.post(url, json=payload) as response:
            body = await response.read()
            if response.status != 200:
                _keep(result, f"HTTP {response.status}: {body[:200].decode(errors='replace')}")
                return
            answer = await response.json(content_type=None)
    except (aiohttp.ClientError, OSError) as exc:
        _keep(result, f"{type(exc).__name__}: {exc}")
        return
    result.accepted += int(answer.get("success_count", 0))
    for error in answer.get("errors", [])[:MAX_ERRORS_KEPT]:
        _keep(result, str(error))


def _keep(result: LoadResult, error: str) -> None:
    if len(result.errors) < MAX_ERRORS_KEPT:
        result.errors.append(error)
