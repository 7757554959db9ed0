"""k8s/observability: the Grafana dashboard and the PrometheusRule use only metric names that
a live node exports on /metrics (a node with a TSA link and a webhook configured, after one
delivery)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SinkFactory
from tests.k8s.k8s_support import K8S
from tests.support.net import free_port
from tests.support.node import InProcessNode, node_settings

DASHBOARD = K8S / "observability" / "dashboard-mta.json"
RULES = K8S / "observability" / "prometheusrule.yaml"
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]|\$\w+", "", expr)  # ranges, Grafana variables
    identifiers = re.finditer(r"(?<![\w.$])([a-zA-Z_:][\w:]*)(\s*\()?", expr)
    return {m.group(1) for m in identifiers if not m.group(2) and m.group(1) not in KEYWORDS}


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":  # label_values(METRIC{...}, label)
            exprs.append(re.sub(r"label_values\((.*),\s*\w+\)", r"\1", variable["definition"]))
    return exprs


def _rule_exprs() -> list[str]:
    rule = yaml.safe_load(RULES.read_text())
    return [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]


def test_the_extractor_finds_names_and_skips_functions_and_labels() -> None:
    expr = 'sum by (kind) (rate(a_total{kind="x"}[5m])) / clamp_min(b, 1e-9) > 0.1 and absent(c)'
    assert metric_names(expr) == {"a_total", "b", "c"}


def test_the_dashboard_covers_throughput_failures_queues_and_spool() -> None:
    names = set().union(*map(metric_names, _dashboard_exprs()))
    for wanted in (
        "mta_messages_delivered_total",
        "mta_deliveries_failed_total",
        "mta_queue_messages",
        "mta_spool_bytes_on_disk",
    ):
        assert wanted in names
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


async def _live_metric_names(tmp_path: Path, sink_factory: SinkFactory) -> set[str]:
    sink = await sink_factory()
    closed = f"http://127.0.0.1:{free_port()}"  # the TSA link's metrics exist while it retries
    settings = node_settings(
        tmp_path,
        routes=[{"domains": ["*"], "relay": f"127.0.0.1:{sink.port}"}],
        tsa={"publish": [closed], "subscribe": closed},
    )
    settings["webhooks"] = [{"url": f"{closed}/hook", "name": "events"}]  # its series exist too
    async with InProcessNode(settings) as node:
        await node.send("a@example.org", ["b@example.com"])
        await node.wait_for_record("Delivery")
        async with aiohttp.ClientSession() as http, http.get(node.http_url + "/metrics") as got:
            text = await got.text()
    families = list(text_string_to_metric_families(text))
    return {sample.name for family in families for sample in family.samples}


async def test_every_metric_in_the_dashboard_and_rules_is_exported(
    tmp_path: Path, sink_factory: SinkFactory
) -> None:
    exported = await _live_metric_names(tmp_path, sink_factory)
    used = set().union(*map(metric_names, _dashboard_exprs() + _rule_exprs()))
    assert len(used) >= 10
    missing = sorted(used - exported)
    assert not missing, f"not on a node's /metrics: {missing}"
