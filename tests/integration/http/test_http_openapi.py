"""The served OpenAPI document describes the API truthfully: schemathesis generates requests
for every operation against a live in-process node and checks each answer (never a 5xx,
documented status codes, content types, headers and body schemas)."""

from __future__ import annotations

import asyncio

import aiohttp
import hypothesis
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.net import free_port, unused_loopback_address
from tests.support.node import InProcessNode, node_settings

OPENAPI = "/api-docs/openapi.json"
MAX_EXAMPLES = 25  # per operation and generation mode
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same requests every run
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)


def run_schemathesis(base_url: str) -> list[str]:
    """Blocking: test every operation; returns the labels of the operations tested."""
    schema = schemathesis.openapi.from_url(base_url + OPENAPI, timeout=10)
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if "requestBody" in operation.definition.raw:
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @SETTINGS
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=10)

            check()
        tested.append(operation.label)
    return tested


async def test_api_conforms_to_its_openapi_document(tmp_path, sink_factory) -> None:
    sink_host = unused_loopback_address()
    sink_port = free_port(sink_host)
    await sink_factory(host=sink_host, port=sink_port)
    # Every domain goes to the local sink: generated recipients never reach real DNS.
    routes = [{"domains": ["*"], "relay": f"{sink_host}:{sink_port}"}]
    async with InProcessNode(node_settings(tmp_path, routes=routes)) as node:
        async with aiohttp.ClientSession() as session, session.get(node.http_url + OPENAPI) as r:
            document = await r.json()
        tested = await asyncio.to_thread(run_schemathesis, node.http_url)

    assert document["openapi"].startswith("3.1")
    # schemathesis leaves out the operation that serves the document it was loaded from.
    documented = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if path != OPENAPI
    }
    assert documented == set(tested)
    assert {"POST /api/inject/v1", "GET /api/admin/bounce/v1", "GET /metrics"} <= documented
