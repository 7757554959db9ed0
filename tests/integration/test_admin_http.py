"""The admin API over HTTP: refusals name the field (400), unknown ids are 404, and every
answer matches the OpenAPI schema published for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from mta.http.admin_routes import ADMIN_OPENAPI_PATHS
from tests.integration.test_admin_harness import AdminNode
from tests.support.node import node_settings

BOUNCE = "/api/admin/bounce/v1"
SUSPEND = "/api/admin/suspend/v1"
SUSPEND_READY = "/api/admin/suspend-ready-q/v1"
INSPECT_MESSAGE = "/api/admin/inspect-message/v1"
INSPECT_QUEUE = "/api/admin/inspect-sched-q/v1"
UNKNOWN_ID = "0b3f0c2e-4a4c-4b8e-9a51-2f6f1d6a9c11"


@pytest.fixture
async def node(tmp_path) -> AsyncIterator[AdminNode]:
    async with AdminNode(node_settings(tmp_path)) as admin_node:
        yield admin_node


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"domain": "example.com"}, "reason"),
        ({"reason": 5}, "reason"),
        ({"reason": "r", "duration": "soon"}, "duration"),
        ({"reason": "r", "duration": -5}, "duration"),
        ({"reason": "r", "duration": True}, "duration"),
        ({"reason": "r", "expires": "tomorrow"}, "expires"),
        ({"reason": "r", "expires": "2030-02-30T00:00:00Z"}, "expires"),
        ({"reason": "r", "domian": "example.com"}, "domian"),
        ({"reason": "r", "domain": 7}, "domain"),
        ({"reason": "r", "queue_names": "example.com"}, "queue_names"),
        ({"reason": "r", "suppress_logging": "yes"}, "suppress_logging"),
        (["reason"], "request body"),
    ],
)
async def test_bad_bounce_bodies_are_400_naming_the_field(
    node: AdminNode, body: Any, field: str
) -> None:
    status, text = await node.call("POST", BOUNCE, body)
    assert status == 400
    assert text.startswith("Failed to deserialize the JSON body into the target type: ")
    assert f"{field}:" in text
    assert node.admin.bounces() == []


async def test_malformed_json_and_content_type(node: AdminNode) -> None:
    status, text = await node.call("POST", SUSPEND, raw=b'{"reason": ')
    assert status == 400 and "JSON" in text
    assert (await node.call("POST", SUSPEND, raw=b"x", params=None))[0] == 400
    assert node.admin.suspensions() == []


async def test_suspend_bodies(node: AdminNode) -> None:
    # Like KumoMTA: unknown fields are ignored here (only bounce refuses them).
    created = await node.ok("POST", SUSPEND, {"reason": "r", "campaign": "c", "extra": 1})
    status, text = await node.call("POST", SUSPEND_READY, {"reason": "r"})
    assert (status, "name:" in text) == (400, True)
    status, text = await node.call("POST", SUSPEND, {"reason": "r", "tenant": ["t"]})
    assert (status, "tenant:" in text) == (400, True)
    [listed] = await node.ok("GET", SUSPEND)
    assert listed["id"] == created["id"] and listed["campaign"] == "c"


@pytest.mark.parametrize("path", [BOUNCE, SUSPEND, SUSPEND_READY])
async def test_delete_answers(node: AdminNode, path: str) -> None:
    noun = {BOUNCE: "bounce", SUSPEND: "suspend", SUSPEND_READY: "suspend-ready-q"}[path]
    assert await node.call("DELETE", path, {"id": UNKNOWN_ID}) == (
        404,
        f"{noun} entry {UNKNOWN_ID} not found",
    )
    for body in ({}, {"id": "not-a-uuid"}, {"id": 5}):
        status, text = await node.call("DELETE", path, body)
        assert status == 400 and "id:" in text
    rule = {"name": "site", "reason": "r"} if path == SUSPEND_READY else {"reason": "r"}
    created = await node.ok("POST", path, rule)
    assert await node.call("DELETE", path, {"id": created["id"].upper()}) == (
        200,
        f"removed {created['id']}",
    )
    assert await node.ok("GET", path) == []


async def test_bad_queries_are_400(node: AdminNode) -> None:
    cases = [
        (INSPECT_MESSAGE, {}, "id:"),
        (INSPECT_MESSAGE, {"id": "x", "want_body": "yes"}, "want_body:"),
        (INSPECT_QUEUE, {}, "queue_name:"),
        (INSPECT_QUEUE, {"queue_name": "q", "limit": "-1"}, "limit:"),
        (INSPECT_QUEUE, {"queue_name": "q", "limit": "ten"}, "limit:"),
    ]
    for path, params, field in cases:
        status, text = await node.call("GET", path, params=params)
        assert status == 400, (path, params)
        assert text.startswith("Failed to deserialize query string: ") and field in text


async def test_expires_wins_over_duration_and_same_criteria_replace(node: AdminNode) -> None:
    first = await node.ok("POST", BOUNCE, {"domain": "example.com", "reason": "one"})
    body = {
        "domain": "EXAMPLE.com",
        "reason": "two",
        "duration": "1s",
        "expires": "2999-01-01T00:00:00+01:00",
    }
    second = await node.ok("POST", BOUNCE, body)
    [listed] = await node.ok("GET", BOUNCE)
    assert first["id"] != second["id"] == listed["id"]
    assert listed["reason"] == "two"
    # Cut to the longest a rule may last (ten years: 3660 days here, a few ms less by the time
    # it is listed), far more than one second.
    assert listed["duration"] == "3660d" or listed["duration"].startswith("3659d 23h 59m")
    assert await node.call("DELETE", BOUNCE, {"id": first["id"]}) == (
        404,
        f"bounce entry {first['id']} not found",
    )


async def test_answers_match_the_openapi_schemas(node: AdminNode) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    await node.ok("POST", SUSPEND, {"domain": "example.com", "reason": "hold", "duration": 60})
    await node.send("alice@example.org", ["bob@example.com"])
    [reception] = await node.wait_for_record("Reception")
    await node.wait_for_record("TransientFailure")  # held in its scheduled queue
    await node.ok("POST", SUSPEND_READY, {"name": "mx.example.com", "reason": "r"})
    await node.ok("POST", BOUNCE, {"domain": "other.test", "reason": "r", "duration": "1h 5m"})
    calls = [
        ("get", BOUNCE, {}),
        ("get", SUSPEND, {}),
        ("get", SUSPEND_READY, {}),
        ("get", INSPECT_MESSAGE, {"id": reception["id"], "want_body": "true"}),
        ("get", INSPECT_QUEUE, {"queue_name": "example.com"}),
        ("get", "/api/admin/ready-q-states/v1", {}),
        ("get", "/api/admin/queue-summary/v1", {}),
        ("post", BOUNCE, {"reason": "r", "domain": "none.test"}),
        ("post", SUSPEND, {"reason": "r", "domain": "none.test"}),
    ]
    for method, path, args in calls:
        params, body = (args, None) if method == "get" else (None, args)
        status, answer = await node.call(method.upper(), path, body, params=params)
        schema = _answer_schema(path, method, status)
        validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
        assert validator.is_valid(answer), (path, answer, list(validator.iter_errors(answer)))


def _answer_schema(path: str, method: str, status: int) -> Any:
    response = ADMIN_OPENAPI_PATHS[path][method]["responses"][str(status)]
    return response["content"]["application/json"]["schema"]
