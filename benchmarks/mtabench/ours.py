"""Our node under test: a config under the run's directory, `python -m mta serve`, SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from mtabench.net import LOOPBACK, free_port, wait_smtp_banner

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0  # drain_timeout below plus margin
INJECT_PATH = "/api/inject/v1"
# No recipients: a working inject service generates nothing (200 with success_count 0, or a
# 4xx for the empty list); a node without one answers 503.
PROBE = {"envelope_sender": "probe@example.org", "recipients": [], "content": "Subject: p\r\n\r\np"}
# The load: 20 sessions from one address, so the per-IP limit must not be what we measure.
MAX_CONNECTIONS_PER_IP = 1000
# Postfix delivers to one destination over up to 20 connections
# (default_destination_concurrency_limit); ours gets the same number.
CONNECTION_LIMIT = 20


def default_python() -> Path:
    venv = REPO / ".venv" / "bin" / "python"
    return venv if venv.exists() else Path("python3")


def node_config(workdir: Path, smtp_port: int, http_port: int, sink: str) -> str:
    """The node's TOML: durable spool, one route to the sink, records to a file."""
    return f"""\
[node]
name = "bench"
hostname = "mta.bench.localdomain"
drain_timeout = "5s"

[spool]
path = "{workdir / "spool"}"
fsync = true
min_free_bytes = 0

[smtp]
listen = ["{LOOPBACK}:{smtp_port}"]
max_connections_per_ip = {MAX_CONNECTIONS_PER_IP}

[http]
listen = ["{LOOPBACK}:{http_port}"]

[delivery]
enable_tls = "Disabled"
connection_limit = {CONNECTION_LIMIT}

[[routes]]
domains = ["*"]
relay = "{sink}"

[log]
stdout = false
path = "{workdir / "log"}"
"""


def http_inject_unavailable(repo: Path = REPO) -> str | None:
    """Why the HTTP inject API cannot be benchmarked in this tree, or None if it looks wired."""
    if not (repo / "mta" / "http").is_dir():
        return "HTTP inject not available (no mta/http/)"
    app = repo / "mta" / "app.py"
    if "mta.http" not in app.read_text(encoding="utf-8"):
        return "HTTP inject not available (mta/http/ not wired into mta/app.py)"
    return None


class OurNode:
    """One `mta serve` process in its own session (so its process group is its pid)."""

    name = "ours"

    def __init__(self, workdir: Path, sink: str, python: Path, extra_config: str = "") -> None:
        self.workdir = workdir
        self._extra_config = extra_config
        self.smtp_port = free_port()
        self.http_port = free_port()
        self._sink = sink
        self._python = python
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pgid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self, wait: bool = True) -> None:
        """Start `mta serve`; with `wait`, return once it answers 220 on its SMTP port."""
        config = self.workdir / "mta.toml"
        text = node_config(self.workdir, self.smtp_port, self.http_port, self._sink)
        config.write_text(text + self._extra_config)
        with (self.workdir / "node.out").open("ab") as out:
            self._process = await asyncio.create_subprocess_exec(
                str(self._python),
                "-m",
                "mta",
                "serve",
                "--config",
                str(config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=REPO,
                start_new_session=True,
            )
        if not wait:
            return
        try:
            await wait_smtp_banner(LOOPBACK, self.smtp_port, START_TIMEOUT)
        except TimeoutError as exc:
            raise RuntimeError(f"our node did not start: {self.log_tail()}") from exc

    async def inject_unavailable(self) -> str | None:
        """Why `POST /api/inject/v1` cannot take the load, or None if it answers as a service."""
        import aiohttp

        try:
            async with (
                asyncio.timeout(10),
                aiohttp.ClientSession() as session,
                session.post(self.http_url + INJECT_PATH, json=PROBE) as response,
            ):
                text = (await response.text()).strip()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return f"no answer on [http] listen ({type(exc).__name__})"
        if response.status in (404, 503):
            return f"{response.status} {text[:80]}"
        return None

    async def stop(self, limit_seconds: float = STOP_TIMEOUT) -> bool:
        """SIGTERM, then SIGKILL after `limit_seconds`; False if it had to be killed."""
        process = self._process
        if process is None or process.returncode is not None:
            return True
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(limit_seconds):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
            return False
        return True

    def log_tail(self, lines: int = 15) -> str:
        path = self.workdir / "node.out"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
