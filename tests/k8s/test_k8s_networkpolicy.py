"""The NetworkPolicies allow every connection the rendered config makes: clients to the node's
listeners, the node to DNS, Redis, each TSA, its relays (in-cluster or not) and MX hosts, and
each destination's own policy lets the node in."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import pytest

from mta.config import config_from_mapping
from mta.units import parse_hostport
from tests.k8s.k8s_support import (
    CLUSTER_OVERLAYS,
    WORKLOAD_KINDS,
    Obj,
    find,
    node_toml,
    of_kind,
    pod_labels,
    render,
    selects,
)

Labels = Mapping[str, str]
EXTERNAL: Labels = {}  # a peer outside the cluster: matched only by rules without `to`


def _policy_for(objs: list[Obj], labels: Labels) -> Obj:
    (policy,) = [
        p for p in of_kind(objs, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)
    ]
    return policy


def _peer_matches(peer: Obj, labels: Labels) -> bool:
    if "ipBlock" in peer:
        return labels is EXTERNAL
    if labels is EXTERNAL:
        return False
    return (
        "podSelector" not in peer or selects(peer["podSelector"], labels) or not peer["podSelector"]
    )


def _allows(rules: list[Obj], side: str, port: int, peer: Labels, protocol: str = "TCP") -> bool:
    for rule in rules:
        ports = rule.get("ports")
        port_ok = not ports or any(
            p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports
        )
        peers = rule.get(side)
        if port_ok and (not peers or any(_peer_matches(p, peer) for p in peers)):
            return True
    return False


def _destination(objs: list[Obj], host: str, port: int) -> tuple[Labels, int]:
    """The pod labels and pod port behind `host:port` (a Service name or per-pod DNS name),
    or (EXTERNAL, port) for a host outside the cluster."""
    parts = host.split(".")
    service = find(objs, "Service", parts[0]) or (
        find(objs, "Service", parts[1]) if len(parts) > 1 else None
    )
    if service is None:
        return EXTERNAL, port
    (workload,) = [
        w
        for w in of_kind(objs, *WORKLOAD_KINDS)
        if selects(service["spec"]["selector"], pod_labels(w))
    ]
    (service_port,) = [p for p in service["spec"]["ports"] if p["port"] == port]
    target = service_port.get("targetPort", port)
    if isinstance(target, str):
        ports = workload["spec"]["template"]["spec"]["containers"][0]["ports"]
        target = next(p["containerPort"] for p in ports if p.get("name") == target)
    return pod_labels(workload), target


def _connections(objs: list[Obj], raw: Mapping[str, object]) -> list[tuple[str, int]]:
    """(host, port) of everything the node connects to, from its config."""
    config = config_from_mapping(raw)
    wanted: list[tuple[str, int]] = []
    if config.redis.url:
        url = urlsplit(config.redis.url)
        wanted.append((url.hostname or "", url.port or 6379))
    for url_text in (*config.tsa.publish, config.tsa.subscribe or ""):
        if url_text:
            url = urlsplit(url_text)
            wanted.append((url.hostname or "", url.port or 80))
    for route in config.routes:
        if route.relay:
            wanted.extend(parse_hostport(relay, default_port=25) for relay in route.relay)
    if not any("*" in route.domains and route.relay for route in config.routes):
        wanted.append(("mx.example.net", config.delivery.smtp_port))  # MX delivery
    return wanted


@pytest.mark.parametrize("overlay", CLUSTER_OVERLAYS)
def test_clients_reach_the_node_listeners(overlay: str) -> None:
    objs = render(overlay)
    workload, raw = node_toml(objs)
    config = config_from_mapping(raw)
    policy = _policy_for(objs, pod_labels(workload))
    assert {"Ingress", "Egress"} <= set(policy["spec"]["policyTypes"])
    client_namespace = policy["spec"]["ingress"][0]["from"][0]
    assert "namespaceSelector" in client_namespace
    for listen in (*config.smtp.listen, *config.http.listen):
        port = parse_hostport(listen)[1]
        assert any(port in {p["port"] for p in rule["ports"]} for rule in policy["spec"]["ingress"])


@pytest.mark.parametrize("overlay", CLUSTER_OVERLAYS)
def test_the_node_reaches_everything_its_config_names(overlay: str) -> None:
    objs = render(overlay)
    workload, raw = node_toml(objs)
    node_labels = pod_labels(workload)
    egress = _policy_for(objs, node_labels)["spec"]["egress"]
    dns = {"k8s-app": "kube-dns"}
    assert _allows(egress, "to", 53, dns, "UDP") and _allows(egress, "to", 53, dns, "TCP")
    for host, port in _connections(objs, raw):
        labels, pod_port = _destination(objs, host, port)
        assert _allows(egress, "to", pod_port, labels), f"node -> {host}:{port} is blocked"
        if labels is not EXTERNAL:
            ingress = _policy_for(objs, labels)["spec"]["ingress"]
            assert _allows(ingress, "from", pod_port, node_labels), f"{host} refuses the node"


def test_the_check_sees_a_missing_egress_rule() -> None:
    objs = render("overlays/dev")
    workload, _ = node_toml(objs)
    policy = _policy_for(objs, pod_labels(workload))
    policy["spec"]["egress"] = [r for r in policy["spec"]["egress"] if "to" not in r]
    labels, pod_port = _destination(objs, "mta-sink", 2525)
    assert labels is not EXTERNAL
    assert not _allows(policy["spec"]["egress"], "to", pod_port, labels)
