"""`mta tsa --config PATH` as a real process: serves, and on SIGTERM saves and exits 0."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson

from tests.support.net import free_port
from tests.support.tsa import RULES_TOML, record, wait_until

ROOT = Path(__file__).resolve().parents[3]


def write_config(tmp_path: Path, port: int) -> Path:
    rules = tmp_path / "shaping.toml"
    rules.write_text(RULES_TOML)
    config = tmp_path / "tsa.toml"
    config.write_text(
        f"""
[tsa]
listen = "127.0.0.1:{port}"
state_path = "{tmp_path / "state.json"}"
shaping_files = ["{rules}"]
save_interval = "1h"
"""
    )
    return config


async def test_tsa_subcommand_serves_and_saves_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mta", "tsa", "--config", str(config),
        cwd=ROOT, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

            async def up() -> bool:
                try:
                    async with http.get(f"{url}/tsa/status") as response:
                        return response.status == 200
                except aiohttp.ClientConnectionError:
                    assert process.returncode is None, "mta tsa exited early"
                    return False

            await wait_until(up, timeout=20)
            body = orjson.dumps([record("rate limited", timestamp=time.time())])
            async with http.post(f"{url}/publish_log_v1", data=body) as response:
                assert response.status == 200
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b"TSA daemon stopped (1 records processed)" in stderr
    saved = orjson.loads((tmp_path / "state.json").read_bytes())
    assert saved["records_seen"] == 1
    assert {item["kind"] for item in saved["events"]} == {"ReadyQSuspension", "ConfigOverride"}


def test_a_bad_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "tsa.toml"
    config.write_text('[tsa]\nlisten = "127.0.0.1:1"\nsurprise = true\n')
    result = subprocess.run(
        [sys.executable, "-m", "mta", "tsa", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "tsa.surprise: unknown key" in result.stderr
