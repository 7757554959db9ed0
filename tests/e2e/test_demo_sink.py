"""The README demo: `mta sink` plus `mta serve` on embedded defaults with a route to the sink,
configured only through the environment; a message sent in lands as a file in the sink."""

import asyncio
import os
import signal
import subprocess
import sys

from tests.support.net import free_port
from tests.support.node import send, simple_message, wait_until


async def test_demo_delivers_to_sink(tmp_path) -> None:
    sink_port, smtp_port, http_port = free_port(), free_port(), free_port()
    sink_dir = tmp_path / "sink"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTA_")}
    env.update(
        {
            "MTA_ROUTES": f'[{{domains = ["*"], relay = "127.0.0.1:{sink_port}"}}]',
            "MTA_SMTP__LISTEN": f"127.0.0.1:{smtp_port}",
            "MTA_HTTP__LISTEN": f"127.0.0.1:{http_port}",
            "MTA_SPOOL__PATH": str(tmp_path / "spool"),
            "MTA_SPOOL__MIN_FREE_BYTES": "0",
        }
    )
    sink = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mta",
            "sink",
            "--listen",
            f"127.0.0.1:{sink_port}",
            "--dir",
            str(sink_dir),
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    node = subprocess.Popen(
        [sys.executable, "-m", "mta", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        for _ in range(100):
            try:
                refused, _reply = await send(
                    ("127.0.0.1", smtp_port),
                    "alice@example.org",
                    ["bob@example.com"],
                    simple_message("demo"),
                )
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the demo node never listened")
        assert refused == {}
        await wait_until(
            lambda: sink_dir.exists() and any(sink_dir.glob("*.eml")),
            15,
            "the message in the sink directory",
        )
    finally:
        for proc in (node, sink):
            proc.send_signal(signal.SIGTERM)
        node_out, _ = node.communicate(timeout=20)
        sink.wait(20)

    [stored] = list(sink_dir.glob("*.eml"))
    content = stored.read_bytes()
    assert b"X-Sink-Rcpt-To: bob@example.com" in content
    assert b"Subject: demo" in content
    assert node.returncode == 0
    types = [
        line.split(b'"type":"')[1].split(b'"')[0]
        for line in node_out.splitlines()
        if b'"type":"' in line
    ]
    assert b"Reception" in types and b"Delivery" in types
