"""The scripted SMTP sink speaks real SMTP and plays the replies tests ask for."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiosmtplib
import pytest

from tests.conftest import SinkFactory
from tests.support.net import free_port, unused_loopback_address
from tests.support.smtp_sink import ReceivedMessage, ScriptedSink
from tests.support.tls import make_self_signed_cert

MESSAGE = b"From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello.\r\n.dot line\r\n"


def client(sink: ScriptedSink, **options: Any) -> aiosmtplib.SMTP:
    settings: dict[str, Any] = {"local_hostname": "client.test", "start_tls": False, "timeout": 5}
    return aiosmtplib.SMTP(hostname=sink.host, port=sink.port, **(settings | options))


async def test_records_accepted_message(sink_factory: SinkFactory) -> None:
    sink = await sink_factory()
    async with client(sink) as smtp:
        errors, _ = await smtp.sendmail(
            "a@example.org", ["b@example.com", "c@example.com"], MESSAGE
        )
    assert errors == {}
    [message] = await sink.wait_for_messages(1)
    assert message == ReceivedMessage(
        mail_from="a@example.org",
        rcpt_tos=["b@example.com", "c@example.com"],
        data=MESSAGE,
        peer="127.0.0.1",
        tls=False,
        ehlo="client.test",
    )
    assert (sink.connections, sink.transactions) == (1, 1)
    assert sink.commands[:3] == [
        "EHLO client.test",
        f"MAIL FROM:<a@example.org> SIZE={len(MESSAGE)}",
        "RCPT TO:<b@example.com>",
    ]


async def test_null_reverse_path_is_recorded_as_empty(sink_factory: SinkFactory) -> None:
    sink = await sink_factory()
    async with client(sink) as smtp:
        await smtp.sendmail("", ["postmaster@example.com"], MESSAGE)
    [message] = await sink.wait_for_messages(1)
    assert message.mail_from == ""
    assert sink.commands[1].startswith("MAIL FROM:<> ")


async def test_ehlo_advertises_and_hides_extensions(sink_factory: SinkFactory) -> None:
    sink = await sink_factory()
    async with client(sink) as smtp:
        await smtp.ehlo()
        assert {"size", "8bitmime", "smtputf8", "pipelining"} <= set(smtp.esmtp_extensions)
        assert "auth" not in smtp.esmtp_extensions
        assert "starttls" not in smtp.esmtp_extensions

    sink.ehlo_extensions_hide = {"PIPELINING", "size"}
    async with client(sink) as smtp:
        await smtp.ehlo()
        assert "pipelining" not in smtp.esmtp_extensions
        assert "size" not in smtp.esmtp_extensions
        assert "8bitmime" in smtp.esmtp_extensions


async def test_rcpt_replies_keep_rejected_recipients_out(sink_factory: SinkFactory) -> None:
    sink = await sink_factory(
        rcpt_replies={"nobody@example.com": "550 5.1.1 no such user"},
        rcpt_replies_once={"later@example.com": ["450 4.2.0 try later"]},
    )
    recipients = ["Nobody@example.com", "later@example.com", "ok@example.com"]
    async with client(sink) as smtp:
        errors, _ = await smtp.sendmail("a@example.org", recipients, MESSAGE)
        assert errors["Nobody@example.com"].code == 550
        assert errors["later@example.com"].code == 450
        errors, _ = await smtp.sendmail("a@example.org", ["later@example.com"], MESSAGE)
        assert errors == {}
    messages = await sink.wait_for_messages(2)
    assert [m.rcpt_tos for m in messages] == [["ok@example.com"], ["later@example.com"]]


async def test_data_fails_once_then_succeeds(sink_factory: SinkFactory) -> None:
    sink = await sink_factory(data_replies=["451 4.3.0 temp"])
    async with client(sink) as smtp:
        with pytest.raises(aiosmtplib.SMTPDataError) as failure:
            await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
        assert failure.value.code == 451
        assert sink.messages == []
        await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
    assert len(await sink.wait_for_messages(1)) == 1
    sink.data_reply = "554 5.6.0 rejected"
    async with client(sink) as smtp:
        with pytest.raises(aiosmtplib.SMTPDataError) as failure:
            await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
        assert failure.value.code == 554
    assert len(sink.messages) == 1
    assert sink.transactions == 3


async def test_mail_reply_421_closes_connection(sink_factory: SinkFactory) -> None:
    sink = await sink_factory(mail_reply="421 4.3.2 shutting down")
    smtp = client(sink)
    await smtp.connect()
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as failure:
        await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
    assert failure.value.code == 421
    assert not smtp.is_connected
    assert sink.messages == []


@pytest.mark.parametrize("greeting", ["421 4.3.2 busy", "554 5.3.2 no service"])
async def test_greeting_rejects(sink_factory: SinkFactory, greeting: str) -> None:
    sink = await sink_factory(greeting=greeting)
    with pytest.raises(aiosmtplib.SMTPConnectResponseError) as failure:
        await client(sink).connect()
    assert failure.value.code == int(greeting[:3])


async def test_554_greeting_answers_503_until_quit(sink_factory: SinkFactory) -> None:
    sink = await sink_factory(greeting="554 no service")
    reader, writer = await asyncio.open_connection(sink.host, sink.port)
    assert await reader.readline() == b"554 no service\r\n"
    writer.write(b"EHLO client.test\r\n")
    assert (await reader.readline()).startswith(b"503 ")
    writer.write(b"QUIT\r\n")
    assert (await reader.readline()).startswith(b"221 ")
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()


async def test_greetings_fifo_then_normal(sink_factory: SinkFactory) -> None:
    sink = await sink_factory(greetings=["421 4.3.2 busy"])
    with pytest.raises(aiosmtplib.SMTPConnectResponseError):
        await client(sink).connect()
    async with client(sink) as smtp:
        await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
    assert sink.connections == 2
    assert len(sink.messages) == 1


async def test_custom_220_banner_and_helo_fallback(sink_factory: SinkFactory) -> None:
    sink = await sink_factory(greeting="220 mx.custom.test ESMTP ready", ehlo_reply="502 5.5.1 no")
    smtp = client(sink)
    greeting = await smtp.connect()
    assert (greeting.code, greeting.message) == (220, "mx.custom.test ESMTP ready")
    await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
    await smtp.quit()
    [message] = await sink.wait_for_messages(1)
    assert message.ehlo == "client.test"
    assert sink.commands[:2] == ["EHLO client.test", "HELO client.test"]


@pytest.mark.parametrize("stage", ["CONNECT", "EHLO", "MAIL", "RCPT", "DATA"])
async def test_drop_after_cuts_the_connection(sink_factory: SinkFactory, stage: str) -> None:
    sink = await sink_factory(drop_after=stage)
    smtp = client(sink)
    with pytest.raises(aiosmtplib.SMTPException):
        await smtp.connect()
        await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
    assert not smtp.is_connected
    assert sink.messages == []
    assert sink.connections == 1
    last_command = sink.commands[-1] if sink.commands else "CONNECT"
    assert last_command.startswith(stage)


async def test_stall_holds_the_reply_until_the_stall_ends(sink_factory: SinkFactory) -> None:
    sink = await sink_factory(stall="MAIL", stall_seconds=0.3)
    async with client(sink) as smtp:
        started = time.monotonic()
        await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
        assert time.monotonic() - started >= 0.3
    assert len(sink.messages) == 1


async def test_stall_times_out_a_client(sink_factory: SinkFactory) -> None:
    sink = await sink_factory(stall="DATA", stall_seconds=60)
    smtp = client(sink, timeout=0.3)
    await smtp.connect()
    with pytest.raises(aiosmtplib.SMTPTimeoutError):
        await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
    smtp.close()
    assert sink.messages == []
    # Stopping the sink (fixture teardown) ends the stall at once.


async def test_starttls(sink_factory: SinkFactory) -> None:
    cert = make_self_signed_cert("mx.sink.test")
    sink = await sink_factory(starttls=cert.server_context(), require_starttls=True)
    async with client(sink) as smtp:
        await smtp.ehlo()
        assert "starttls" in smtp.esmtp_extensions
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as failure:
            await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
        assert failure.value.code == 530
    async with client(sink, tls_context=cert.client_context()) as smtp:
        await smtp.starttls(server_hostname="mx.sink.test")
        await smtp.ehlo()
        assert "starttls" not in smtp.esmtp_extensions
        await smtp.sendmail("a@example.org", ["b@example.com"], MESSAGE)
    [message] = await sink.wait_for_messages(1)
    assert message.tls
    assert sink.connections == 2
    assert "STARTTLS" in sink.commands


async def test_wait_for_messages_times_out_clearly(sink_factory: SinkFactory) -> None:
    sink = await sink_factory()
    with pytest.raises(TimeoutError, match=r"waited 0\.1s for 1 message"):
        await sink.wait_for_messages(1, timeout=0.1)


async def test_wait_for_connections(sink_factory: SinkFactory) -> None:
    sink = await sink_factory()
    waiter = asyncio.create_task(sink.wait_for_connections(2, timeout=2))
    for _ in range(2):
        async with client(sink) as smtp:
            await smtp.noop()
    await waiter
    assert sink.connections == 2


async def test_sinks_share_a_port_on_distinct_loopback_addresses(sink_factory: SinkFactory) -> None:
    mx1, mx2 = unused_loopback_address(), unused_loopback_address()
    assert mx1 != mx2
    port = free_port(mx1, mx2)
    first = await sink_factory(mx1, port)
    second = await sink_factory(mx2, port)
    for sink in (first, second):
        async with client(sink) as smtp:
            await smtp.sendmail("a@example.org", [f"to@{sink.host}"], MESSAGE)
    assert [m.rcpt_tos for m in first.messages] == [[f"to@{mx1}"]]
    assert [m.rcpt_tos for m in second.messages] == [[f"to@{mx2}"]]


async def test_context_manager_stops_listening() -> None:
    async with ScriptedSink() as sink:
        port = sink.port
        async with client(sink) as smtp:
            await smtp.noop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
