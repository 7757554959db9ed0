"""Consistency of the rendered objects with each other and with the node's config: what a
cluster would only reveal at run time (the faults of the KumoMTA demo among them: SMTP
disabled, a metrics port that did not match, a TSA serviceName that was not headless, empty
trusted hosts, HPAs pointed at Deployments)."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import pytest

from mta.config import config_from_mapping
from mta.http.openapi import openapi_document
from mta.units import parse_hostport
from tests.k8s.k8s_support import (
    CLUSTER_OVERLAYS,
    OVERLAYS,
    WORKLOAD_KINDS,
    Obj,
    container,
    documented_secrets,
    find,
    get,
    key_documented,
    mounts,
    node_toml,
    of_kind,
    pod_labels,
    pod_spec,
    render,
    secret_data,
    selects,
)

NODE_OVERLAYS = (*CLUSTER_OVERLAYS, "overlays/node-relay")


def _listen_ports(addresses: tuple[str, ...]) -> set[int]:
    """Ports of listeners reachable from outside the pod (not bound to loopback)."""
    ports = set()
    for address in addresses:
        host, port = parse_hostport(address)
        if not ipaddress.ip_address(host).is_loopback:
            ports.add(port)
    return ports


def _container_ports(workload: Obj) -> dict[str, int]:
    return {
        p.get("name", str(p["containerPort"])): p["containerPort"]
        for p in container(workload)["ports"]
    }


@pytest.mark.parametrize("overlay", NODE_OVERLAYS)
def test_container_ports_match_the_listen_addresses(overlay: str) -> None:
    workload, raw = node_toml(render(overlay))
    config = config_from_mapping(raw)
    exposed = _listen_ports(config.smtp.listen) | _listen_ports(config.http.listen)
    assert config.smtp.listen, "the SMTP listener is enabled"
    assert set(_container_ports(workload).values()) == exposed
    for port in container(workload)["ports"]:
        if pod_spec(workload).get("hostNetwork"):
            assert port["hostPort"] == port["containerPort"]


@pytest.mark.parametrize("overlay", NODE_OVERLAYS)
def test_probes_use_paths_of_the_http_api_on_its_port(overlay: str) -> None:
    workload, raw = node_toml(render(overlay))
    config = config_from_mapping(raw)
    api_paths = set(openapi_document()["paths"])
    http_ports = {parse_hostport(address)[1] for address in config.http.listen}
    spec = container(workload)
    probes = [spec[kind] for kind in ("startupProbe", "readinessProbe", "livenessProbe")]
    for probe in probes:
        get_ = probe["httpGet"]
        assert get_["path"] in api_paths
        port = get_["port"]
        assert (_container_ports(workload)[port] if isinstance(port, str) else port) in http_ports
        host = get_.get("host")
        if host is not None:  # a loopback-only listener is probed on loopback
            assert any(address.startswith(f"{host}:") for address in config.http.listen)
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/livez"
    # The startup probe waits for spool recovery (/readyz), for minutes if need be.
    startup = spec["startupProbe"]
    assert startup["httpGet"]["path"] == "/readyz"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600


@pytest.mark.parametrize("overlay", NODE_OVERLAYS)
def test_shutdown_outlasts_the_drain_timeout(overlay: str) -> None:
    workload, raw = node_toml(render(overlay))
    config = config_from_mapping(raw)
    pre_stop = container(workload)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    needed = config.node.drain_timeout + float(pre_stop[1])
    assert pod_spec(workload)["terminationGracePeriodSeconds"] > needed


@pytest.mark.parametrize("overlay", NODE_OVERLAYS)
def test_the_node_runs_unprivileged_with_a_read_only_root(overlay: str) -> None:
    workload, raw = node_toml(render(overlay))
    security = {
        **pod_spec(workload).get("securityContext", {}),
        **container(workload)["securityContext"],
    }
    assert security["runAsNonRoot"] is True and security["runAsUser"] >= 1000
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= set(container(workload)["resources"])
    spool = str(config_from_mapping(raw).spool.path)
    (spool_mount,) = [m for m, _ in mounts(workload) if m["mountPath"] == spool]
    assert not spool_mount.get("readOnly")


@pytest.mark.parametrize("overlay", CLUSTER_OVERLAYS)
def test_statefulsets_are_governed_by_headless_services(overlay: str) -> None:
    objs = render(overlay)
    for statefulset in of_kind(objs, "StatefulSet"):
        service = get(objs, "Service", statefulset["spec"]["serviceName"])
        assert service["spec"].get("clusterIP") == "None", service["metadata"]["name"]
        assert selects(service["spec"]["selector"], pod_labels(statefulset))
        assert statefulset["spec"]["podManagementPolicy"] == "Parallel"
    node = get(objs, "StatefulSet", "mta")
    (template,) = node["spec"]["volumeClaimTemplates"]
    _, raw = node_toml(objs)
    assert any(
        m["name"] == template["metadata"]["name"] and m["mountPath"] == raw["spool"]["path"]
        for m, _ in mounts(node)
    )
    assert node["spec"]["template"]["spec"]["topologySpreadConstraints"]


@pytest.mark.parametrize("overlay", CLUSTER_OVERLAYS)
def test_nodes_publish_to_every_tsa_pod_and_follow_the_clusterip(overlay: str) -> None:
    objs = render(overlay)
    _, raw = node_toml(objs)
    tsa = get(objs, "StatefulSet", "mta-tsa")
    port = _container_ports(tsa)["tsa"]
    name, service = tsa["metadata"]["name"], tsa["spec"]["serviceName"]
    expected = [f"http://{name}-{i}.{service}:{port}" for i in range(tsa["spec"]["replicas"])]
    assert raw["tsa"]["publish"] == expected
    subscribe = urlsplit(raw["tsa"]["subscribe"])
    clusterip = get(objs, "Service", subscribe.hostname or "")
    assert clusterip["spec"].get("clusterIP") != "None"
    assert selects(clusterip["spec"]["selector"], pod_labels(tsa))
    assert subscribe.port in {p["port"] for p in clusterip["spec"]["ports"]}


@pytest.mark.parametrize("overlay", CLUSTER_OVERLAYS)
def test_services_reach_the_ports_of_the_pods_they_select(overlay: str) -> None:
    objs = render(overlay)
    workloads = of_kind(objs, *WORKLOAD_KINDS)
    for service in of_kind(objs, "Service"):
        (workload,) = [w for w in workloads if selects(service["spec"]["selector"], pod_labels(w))]
        ports = _container_ports(workload)
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert target in ports or target in ports.values(), (
                service["metadata"]["name"],
                target,
            )


def test_prometheus_scrapes_the_http_port_as_an_admin_user() -> None:
    objs = render("overlays/prod")
    (monitor,) = of_kind(objs, "ServiceMonitor")
    (service,) = [
        s
        for s in of_kind(objs, "Service")
        if selects(monitor["spec"]["selector"], s["metadata"].get("labels", {}))
    ]
    workload, raw = node_toml(objs)
    (endpoint,) = monitor["spec"]["endpoints"]
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
    assert _container_ports(workload)[port["targetPort"]] in _listen_ports(
        tuple(raw["http"]["listen"])
    )
    assert "prometheus" in raw["http"]["admin_users"]


@pytest.mark.parametrize("overlay", NODE_OVERLAYS)
def test_smtp_clients_in_the_cluster_may_relay(overlay: str) -> None:
    _, raw = node_toml(render(overlay))
    networks = [ipaddress.ip_network(n) for n in config_from_mapping(raw).smtp.relay_networks]
    assert any(not network.is_loopback for network in networks), "trusted hosts beyond loopback"


@pytest.mark.parametrize("overlay", CLUSTER_OVERLAYS)
def test_hpa_and_pdbs_select_the_workloads(overlay: str) -> None:
    objs = render(overlay)
    workloads = of_kind(objs, *WORKLOAD_KINDS)
    (hpa,) = of_kind(objs, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert target["kind"] == "StatefulSet" and target["apiVersion"] == "apps/v1"
    statefulset = get(objs, "StatefulSet", target["name"])
    assert (
        hpa["spec"]["minReplicas"] <= statefulset["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    )
    pdbs = of_kind(objs, "PodDisruptionBudget")
    for pdb in pdbs:
        matched = [w for w in workloads if selects(pdb["spec"]["selector"], pod_labels(w))]
        assert len(matched) == 1, pdb["metadata"]["name"]
    assert {"mta", "mta-tsa"} <= {pdb["metadata"]["name"] for pdb in pdbs}


def _references(workload: Obj) -> list[tuple[str, str, str | None]]:
    """(kind, name, key or None for a whole-object mount) of a workload's ConfigMaps/Secrets."""
    found: list[tuple[str, str, str | None]] = []
    spec = pod_spec(workload)
    for volume in spec.get("volumes", []):
        for kind, field, name_field in (
            ("ConfigMap", "configMap", "name"),
            ("Secret", "secret", "secretName"),
        ):
            if field in volume:
                source = volume[field]
                keys = [item["key"] for item in source.get("items", [])] or [None]
                found += [(kind, source[name_field], key) for key in keys]
    for box in spec["containers"] + spec.get("initContainers", []):
        for env in box.get("env", []):
            for kind, ref in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                source = env.get("valueFrom", {}).get(ref)
                if source:
                    found.append((kind, source["name"], source["key"]))
    return found


def _monitor_references(objs: list[Obj]) -> list[tuple[str, str, str | None]]:
    found: list[tuple[str, str, str | None]] = []
    for monitor in of_kind(objs, "ServiceMonitor"):
        for endpoint in monitor["spec"]["endpoints"]:
            for part in endpoint.get("basicAuth", {}).values():
                found.append(("Secret", part["name"], part["key"]))
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_referenced_configmaps_and_secrets_exist_or_are_documented(overlay: str) -> None:
    objs = render(overlay)
    documented = documented_secrets()
    references = [ref for w in of_kind(objs, *WORKLOAD_KINDS) for ref in _references(w)]
    for kind, name, key in references + _monitor_references(objs):
        obj = find(objs, kind, name)
        if obj is not None:
            keys = set(obj.get("data", {})) | set(secret_data(obj) if kind == "Secret" else {})
            assert key is None or key in keys, f"{kind} {name} has no key {key}"
        else:
            assert kind == "Secret", f"ConfigMap {name} is not in k8s/{overlay}"
            assert name in documented, f"Secret {name} is neither generated nor in SECRETS.md"
            assert key is None or key_documented(documented[name], key), (name, key)


@pytest.mark.parametrize("overlay", NODE_OVERLAYS)
def test_every_file_the_config_names_is_mounted(overlay: str) -> None:
    objs = render(overlay)
    workload, raw = node_toml(objs)
    documented = documented_secrets()
    for path in _paths(raw):
        mount, volume = _mount_for(workload, path)
        relative = path[len(mount["mountPath"]) :].lstrip("/")
        if not relative or "emptyDir" in volume or "persistentVolumeClaim" in volume:
            continue  # a directory, or a file the node writes itself
        if "hostPath" in volume:
            continue
        kind, source = (
            ("ConfigMap", volume["configMap"])
            if "configMap" in volume
            else ("Secret", volume["secret"])
        )
        name = source.get("name") or source["secretName"]
        items = {item["path"]: item["key"] for item in source.get("items", [])}
        key = items.get(relative, relative) if not items else items.get(relative)
        assert key is not None, f"{path}: {name} mounts no such item"
        obj = find(objs, kind, name)
        if obj is not None:
            assert key in (obj.get("data") or secret_data(obj)), f"{path}: {name} has no {key}"
        else:
            assert key_documented(documented[name], key), f"{path}: {key} of {name} undocumented"


def _paths(raw: Any) -> list[str]:
    if isinstance(raw, dict):
        return [p for value in raw.values() for p in _paths(value)]
    if isinstance(raw, list):
        return [p for value in raw for p in _paths(value)]
    return [raw] if isinstance(raw, str) and raw.startswith("/") else []


def _mount_for(workload: Obj, path: str) -> tuple[Obj, Obj]:
    candidates = [
        (mount, volume)
        for mount, volume in mounts(workload)
        if path == mount["mountPath"] or path.startswith(mount["mountPath"].rstrip("/") + "/")
    ]
    assert candidates, f"{path} is on the read-only root filesystem, not on a volume"
    return max(candidates, key=lambda pair: len(pair[0]["mountPath"]))
