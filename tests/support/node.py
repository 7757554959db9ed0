"""Run a whole node for end-to-end tests: in this process, or as a real `mta serve` process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiosmtplib

from mta.app import Node
from mta.config import Config, config_from_mapping
from tests.support.net import free_port

Record = dict[str, Any]


def node_settings(
    tmp_path: Path,
    *,
    dns_port: int | None = None,
    smtp_port: int = 25,
    routes: Sequence[Mapping[str, Any]] = (),
    **sections: Mapping[str, Any],
) -> dict[str, Any]:
    """A config document for a test node: loopback listener, fast retries, test DNS."""
    settings: dict[str, Any] = {
        "node": {"name": "test-node", "hostname": "mta.test", "drain_timeout": "5s"},
        "spool": {"path": str(tmp_path / "spool"), "min_free_bytes": 0},
        "smtp": {"listen": [f"127.0.0.1:{free_port()}"], "idle_timeout": "30s"},
        "http": {"listen": [f"127.0.0.1:{free_port()}"]},
        "delivery": {
            "smtp_port": smtp_port,
            "connect_timeout": "2s",
            "ehlo_timeout": "5s",
            "mail_from_timeout": "5s",
            "rcpt_to_timeout": "5s",
            "data_timeout": "5s",
            "data_dot_timeout": "5s",
            "idle_timeout": "1s",
            "allowed_private_networks": ["127.0.0.0/8"],  # sinks are on loopback
        },
        "queue": {
            "retry_interval": "1s",
            "max_retry_interval": "2s",
            "max_age": "1h",
            "jitter": 0.0,
        },
        "dns": {"timeout": "1s", "min_ttl": "1s"},
        "log": {"stdout": False},
        "routes": [dict(route) for route in routes],
    }
    if dns_port is not None:
        settings["dns"]["nameservers"] = [f"127.0.0.1:{dns_port}"]
    for name, values in sections.items():
        settings.setdefault(name, {}).update(values)
    return settings


def smtp_address(settings: Mapping[str, Any]) -> tuple[str, int]:
    host, _, port = settings["smtp"]["listen"][0].rpartition(":")
    return host, int(port)


def http_url(settings: Mapping[str, Any]) -> str:
    """The base URL of the node's HTTP API, e.g. "http://127.0.0.1:8123"."""
    return f"http://{settings['http']['listen'][0]}"


async def send(
    address: tuple[str, int], sender: str, recipients: Sequence[str], message: bytes | str
) -> tuple[dict[str, tuple[int, str]], str]:
    """One SMTP transaction (no SIZE parameter); returns (refused recipients, final reply).

    A refused recipient maps to its (code, text); a refused MAIL or DATA raises aiosmtplib's
    SMTPSenderRefused / SMTPDataError.
    """
    data = message.encode() if isinstance(message, str) else message
    client = aiosmtplib.SMTP(
        hostname=address[0],
        port=address[1],
        timeout=10,
        start_tls=False,
        local_hostname="client.test",
    )
    await client.connect()
    try:
        await client.ehlo()
        await client.mail(sender)
        refused: dict[str, tuple[int, str]] = {}
        errors: list[aiosmtplib.SMTPRecipientRefused] = []
        for rcpt in recipients:
            try:
                await client.rcpt(rcpt)
            except aiosmtplib.SMTPRecipientRefused as exc:
                refused[rcpt] = (exc.code, exc.message)
                errors.append(exc)
        if len(refused) == len(recipients):
            raise aiosmtplib.SMTPRecipientsRefused(errors)
        response = await client.data(data)
        return refused, response.message
    finally:
        client.close()


def simple_message(subject: str = "test", body: str = "Hello.\r\n") -> bytes:
    return (
        f"From: sender@example.org\r\nTo: rcpt@example.com\r\nSubject: {subject}\r\n\r\n{body}"
    ).encode()


async def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


class RecordsMixin:
    records: list[Record]

    def of_type(self, kind: str, recipient: str | None = None) -> list[Record]:
        return [
            r
            for r in self.records
            if r["type"] == kind and (recipient is None or r["recipient"] == recipient)
        ]

    async def wait_for_record(
        self, kind: str, recipient: str | None = None, count: int = 1, timeout: float = 15.0
    ) -> list[Record]:
        await wait_until(
            lambda: len(self.of_type(kind, recipient)) >= count,
            timeout,
            f"{count} {kind} record(s) for {recipient or 'any recipient'}",
        )
        return self.of_type(kind, recipient)


class InProcessNode(RecordsMixin):
    """A Node running in the test's event loop, with its log records collected."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = settings
        self.config: Config = config_from_mapping(settings)
        self.node = Node(self.config)
        self.records = []
        self.node.records.add_listener(self.records.append)
        self.address = smtp_address(settings)
        self.http_url = http_url(settings)

    async def __aenter__(self) -> InProcessNode:
        await self.node.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.node.stop()

    async def send(
        self, sender: str, recipients: Sequence[str], message: bytes | str | None = None
    ) -> tuple[dict[str, Any], str]:
        return await send(self.address, sender, recipients, message or simple_message())


class NodeProcess(RecordsMixin):
    """`python -m mta serve --config FILE` as a child process; records read from its stdout."""

    def __init__(self, settings: Mapping[str, Any], workdir: Path) -> None:
        self.settings = settings
        self.address = smtp_address(settings)
        self.http_url = http_url(settings)
        self.config_path = workdir / "mta.toml"
        self.config_path.write_text(_to_toml(settings))
        self.records = []
        self.stderr_path = workdir / "node.stderr"
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 20.0) -> None:
        settings = {**self.settings, "log": {**self.settings.get("log", {}), "stdout": True}}
        self.config_path.write_text(_to_toml(settings))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MTA_")}
        with self.stderr_path.open("ab") as stderr:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "mta", "serve", "--config", str(self.config_path)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
            )
        self._reader = asyncio.create_task(self._read_records())
        await wait_until(self._listening, timeout, f"node listening on {self.address}")

    def _listening(self) -> bool:
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise RuntimeError(f"node exited {self._proc.returncode}: {self.stderr()}")
        import socket

        with contextlib.closing(socket.socket()) as sock:
            return sock.connect_ex(self.address) == 0

    async def _read_records(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        while True:
            line = await asyncio.to_thread(stdout.readline)
            if not line:
                return
            self.records.append(json.loads(line))

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(10)

    def _close_pipe(self) -> None:
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()

    async def terminate(self, timeout: float = 30.0) -> int:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(self._proc.wait, timeout)
        if self._reader is not None:
            await self._reader
        return code

    async def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.kill()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        self._close_pipe()


def _to_toml(settings: Mapping[str, Any]) -> str:
    lines: list[str] = []
    for section, values in settings.items():
        if isinstance(values, list):  # arrays of tables ([[routes]], [[webhooks]]) come last
            continue
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
    for section, tables in settings.items():
        for table in tables if isinstance(tables, list) else []:
            lines.append(f"[[{section}]]")
            lines.extend(f"{key} = {json.dumps(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"
