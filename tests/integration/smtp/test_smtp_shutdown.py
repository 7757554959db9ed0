"""Graceful close: listeners first, then 421 to idle sessions, DATA finishes before its 421."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.smtp.harness import ConnectClient, RawClient, StartServer

SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"


async def greeted(raw: RawClient) -> RawClient:
    assert (await raw.reply()).startswith("220 ")
    assert (await raw.command(b"EHLO client.test\r\n")).startswith("250-")
    return raw


async def test_idle_session_gets_421_and_is_closed(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server()
    raw = await greeted(await connect(harness.port))
    await harness.server.stop_listening()
    await harness.server.close_sessions()
    assert await raw.reply() == SHUTTING_DOWN
    assert await raw.at_eof()
    assert harness.server.active_sessions == 0


async def test_stop_listening_keeps_live_sessions(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server()
    raw = await greeted(await connect(harness.port))
    await harness.server.stop_listening()
    with pytest.raises(ConnectionRefusedError):
        await connect(harness.port)
    assert await raw.command(b"NOOP\r\n") == "250 2.0.0 OK"
    assert harness.server.active_sessions == 1


async def test_session_in_data_finishes_its_message_first(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server()
    busy = await connect(harness.port)
    idle = await greeted(await connect(harness.port))
    await busy.start_mail()
    await busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
    await harness.server.stop_listening()
    closing = asyncio.create_task(harness.server.close_sessions())
    assert await idle.reply() == SHUTTING_DOWN
    assert await idle.at_eof()
    assert not closing.done()
    await busy.send(b"second half\r\n.\r\n")
    assert await busy.reply() == "250 2.0.0 OK queued as msg1"
    assert await busy.reply() == SHUTTING_DOWN
    assert await busy.at_eof()
    await closing
    assert harness.accept.inbounds[0].data.endswith(b"first half\r\nsecond half\r\n")


async def test_sessions_still_busy_after_the_grace_period_are_aborted(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server()
    stalled = await connect(harness.port)
    await stalled.start_mail()
    await stalled.send(b"Subject: never finished\r\n")
    await harness.server.close_sessions(grace=0.2)
    assert harness.server.active_sessions == 0
    assert await stalled.reader.read() == b""  # aborted: no reply at all
    assert harness.accept.inbounds == []
