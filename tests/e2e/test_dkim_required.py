"""`required = true`: a message the signer cannot sign is refused with 451 and never stored, so
the client keeps it queued; it is never sent unsigned. With `required = false` the same message
is delivered unsigned. (The HTTP API answers 422 to such content before anything is signed.)"""

import aiosmtplib
import pytest

from tests.support.dkim import publish, signature_count, write_key
from tests.support.node import InProcessNode, node_settings
from tests.support.scenario import relay_target

# dkimpy cannot parse a header block with a line that is neither a field nor a continuation.
UNSIGNABLE = b"From: alice@example.org\r\nnot a header field\r\nSubject: x\r\n\r\nbody\r\n"


def settings(tmp_path, dns_server, routes, *, required: bool) -> dict:
    path, key = write_key(tmp_path / "keys", "s1")
    publish(dns_server, "example.org", "s1", key)
    dkim = {"example.org": {"selector": "s1", "key_file": str(path), "required": required}}
    return node_settings(tmp_path, dns_port=dns_server.port, routes=routes, dkim=dkim)


async def test_required_refuses_with_451(tmp_path, dns_server, sink_factory, caplog) -> None:
    target = relay_target()
    sink = await target.start_sink(sink_factory)
    async with InProcessNode(settings(tmp_path, dns_server, target.routes, required=True)) as node:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await node.send("alice@example.org", ["bob@example.com"], UNSIGNABLE)
        stored = len(node.node.spool)

    assert (refused.value.code, refused.value.message.split()[0]) == (451, "4.3.0")
    assert "DKIM" in refused.value.message
    assert "DKIM signing for example.org failed" in caplog.text
    assert stored == 0
    assert sink.messages == []
    assert node.of_type("Reception") == []


async def test_not_required_delivers_unsigned(tmp_path, dns_server, sink_factory) -> None:
    target = relay_target()
    sink = await target.start_sink(sink_factory)
    async with InProcessNode(settings(tmp_path, dns_server, target.routes, required=False)) as node:
        await node.send("alice@example.org", ["bob@example.com"], UNSIGNABLE)
        [received] = await sink.wait_for_messages(1)

    assert signature_count(received.data) == 0
    assert received.data.endswith(UNSIGNABLE)
