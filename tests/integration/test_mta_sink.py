"""The `mta sink` server stores each message it receives as an .eml file."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiosmtplib
import pytest

from mta.sink import Sink, run_sink
from tests.support.net import free_port

MESSAGE = b"From: a@example.org\r\nSubject: demo\r\n\r\nHello.\r\n..leading dot\r\n"


async def send(port: int, sender: str, recipients: list[str], message: bytes = MESSAGE) -> str:
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, local_hostname="client.test", start_tls=False, timeout=5
    ) as smtp:
        _errors, reply = await smtp.sendmail(sender, recipients, message)
    return reply


def eml_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.eml"))


async def test_stores_each_message_as_a_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mta.sink")
    directory = tmp_path / "mail"
    sink = Sink(directory, port=0)
    await sink.start()
    try:
        assert sink.port != 0
        first = await send(sink.port, "a@example.org", ["b@example.com", "c@example.com"])
        await send(sink.port, "", ["postmaster@example.com"], b"Subject: bounce\r\n\r\nx\r\n")
    finally:
        await sink.stop()

    assert sink.received == 2
    files = sorted(directory.iterdir())
    assert files == eml_files(directory)
    assert [f.suffix for f in files] == [".eml", ".eml"]  # no temporary files left
    assert files[0].name in first
    assert files[0].read_bytes() == (
        b"X-Sink-Mail-From: a@example.org\r\n"
        b"X-Sink-Rcpt-To: b@example.com\r\n"
        b"X-Sink-Rcpt-To: c@example.com\r\n" + MESSAGE  # dot-stuffing undone
    )
    assert (
        files[1]
        .read_bytes()
        .startswith(
            b"X-Sink-Mail-From: <>\r\nX-Sink-Rcpt-To: postmaster@example.com\r\nSubject: bounce"
        )
    )
    stored_lines = [r.getMessage() for r in caplog.records if "stored" in r.getMessage()]
    assert len(stored_lines) == 2
    assert "from=a@example.org to=b@example.com,c@example.com" in stored_lines[0]


async def test_file_names_sort_in_arrival_order(tmp_path: Path) -> None:
    sink = Sink(tmp_path, port=0)
    names = [sink.next_file_name() for _ in range(3)]
    assert names == sorted(names)
    assert all(name.endswith(f"-{i:06d}.eml") for i, name in enumerate(names, 1))


async def test_run_sink_until_stop_is_set(tmp_path: Path) -> None:
    port = free_port()
    stop = asyncio.Event()
    runner = asyncio.create_task(run_sink(tmp_path, "127.0.0.1", port, stop))
    for _ in range(100):  # until it listens
        try:
            await send(port, "a@example.org", ["b@example.com"])
            break
        except aiosmtplib.SMTPConnectError:
            await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(runner, 5)
    assert len(eml_files(tmp_path)) == 1
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_stop_closes_idle_sessions(tmp_path: Path) -> None:
    sink = Sink(tmp_path, port=0)
    await sink.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", sink.port)
    assert (await reader.readline()).startswith(b"220 ")
    await asyncio.wait_for(sink.stop(), 5)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    await writer.wait_closed()
