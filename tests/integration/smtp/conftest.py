"""Fixtures for the SMTP front end tests: started servers and raw clients, cleaned up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.smtp.harness import (
    ConnectClient,
    Harness,
    RawClient,
    StartServer,
    new_harness,
)


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """`await start_server(**SmtpConfig fields)` -> a started Harness, stopped at teardown."""
    harnesses: list[Harness] = []

    async def start(**overrides: Any) -> Harness:
        harness = await new_harness(**overrides)
        harnesses.append(harness)
        return harness

    yield start
    for harness in harnesses:
        await harness.server.stop_listening()
        await harness.server.close_sessions(grace=1.0)


@pytest.fixture
async def connect() -> AsyncIterator[ConnectClient]:
    """`await connect(port, source="127.0.0.1")` -> a RawClient, closed at teardown."""
    clients: list[RawClient] = []

    async def make(port: int, source: str = "127.0.0.1") -> RawClient:
        client = await RawClient.connect(port, source)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
