"""The Kubernetes demo's inject: `curl -H "Content-Type: application/json" -u user1:PASSWORD
http://localhost:8000/api/inject/v1 -d @sample_http_inject_payload.json` against `mta serve`
with the user in a mounted Secret directory and no trusted network: 200 with KumoMTA's
answer, and the built message arrives at the sink."""

import base64
import email

import aiohttp

from tests.support.net import free_port, unused_loopback_address
from tests.support.node import NodeProcess, node_settings
from tests.support.payloads import SAMPLE_PAYLOAD


def mount_secret(directory, user: str, password: str):
    """The layout the kubelet gives a Secret volume: files behind a ..data symlink."""
    data = directory / "..2024_01_01_00_00_00.000000001"
    data.mkdir(parents=True)
    (data / user).write_text(password)
    (directory / "..data").symlink_to(data.name)
    (directory / user).symlink_to(f"..data/{user}")
    return directory


async def test_demo_curl_inject_with_basic_auth(tmp_path, sink_factory) -> None:
    sink_host = unused_loopback_address()
    sink_port = free_port(sink_host)
    sink = await sink_factory(host=sink_host, port=sink_port)
    secret = mount_secret(tmp_path / "http-users", "user1", "PASSWORD")
    settings = node_settings(
        tmp_path,
        routes=[{"domains": ["*"], "relay": f"{sink_host}:{sink_port}"}],
        http={"trusted_networks": ["10.255.255.0/24"], "users_dir": str(secret)},
    )
    node = NodeProcess(settings, tmp_path)
    await node.start()
    try:
        url = node.http_url + "/api/inject/v1"
        headers = {"Content-Type": "application/json"}
        credentials = base64.b64encode(b"user1:PASSWORD").decode()
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=SAMPLE_PAYLOAD, headers=headers) as response:
                refused = (response.status, await response.text())
            headers["Authorization"] = f"Basic {credentials}"
            async with session.post(url, json=SAMPLE_PAYLOAD, headers=headers) as response:
                status, answer = response.status, await response.json()
        await sink.wait_for_messages(1, timeout=15)
        await node.wait_for_record("Delivery", "someone@example.com")
    finally:
        await node.close()

    assert refused == (401, "Missing Authorization header")
    assert status == 200
    assert answer == {"success_count": 1, "fail_count": 0, "failed_recipients": [], "errors": []}
    [message] = sink.messages
    assert (message.mail_from, message.rcpt_tos) == ("test@example.com", ["someone@example.com"])
    parsed = email.message_from_bytes(message.data)
    assert parsed["Subject"] == "This is the subject"
    assert [part.get_content_type() for part in parsed.walk() if not part.is_multipart()] == [
        "text/plain",
        "text/html",
    ]
    [reception] = node.of_type("Reception", "someone@example.com")
    assert reception["reception_protocol"] == "HTTP"
