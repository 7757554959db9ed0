"""Rendering and reading the kustomize overlays in k8s/ for the manifest tests.

`kubectl kustomize` renders (any kubectl from 1.20 on: the manifests use the kustomize 2.0
syntax that Debian's kubernetes-client understands). A missing kubectl is a failure that says
how to install it, never a skip.
"""

from __future__ import annotations

import base64
import functools
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
KUBERNETES_VERSION = "1.32.0"  # the schema version every object is validated against
# Every directory `kubectl apply -k` may be given.
OVERLAYS = ("base", "overlays/dev", "overlays/prod", "overlays/node-relay", "observability")
# Overlays that run the node cluster (node StatefulSet, TSA, Redis).
CLUSTER_OVERLAYS = ("base", "overlays/dev", "overlays/prod")
NODE_WORKLOADS = {"StatefulSet": "mta", "DaemonSet": "mta-relay"}
# Custom resources of the Prometheus Operator: no schema in kubernetes-validate.
MONITORING = "monitoring.coreos.com/v1"
CUSTOM_KINDS = {(MONITORING, "ServiceMonitor"), (MONITORING, "PrometheusRule")}
WORKLOAD_KINDS = ("StatefulSet", "Deployment", "DaemonSet")
Obj = dict[str, Any]


def kubectl() -> str:
    """The kubectl executable, or a test failure naming how to get one."""
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "kubectl is not installed: run scripts/setup kubernetes-client "
            "(apt-get install kubernetes-client)",
            pytrace=False,
        )
    return found


@functools.cache
def _render_text(overlay: str) -> str:
    result = subprocess.run(
        [kubectl(), "kustomize", str(K8S / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize k8s/{overlay} failed:\n{result.stderr}", pytrace=False)
    return result.stdout


def render(overlay: str) -> list[Obj]:
    """The objects `kubectl kustomize k8s/<overlay>` renders (a fresh copy each call)."""
    return [obj for obj in yaml.safe_load_all(_render_text(overlay)) if obj]


def find(objs: list[Obj], kind: str, name: str) -> Obj | None:
    """The object of this kind whose name is `name` (or a generated `name-<hash>`)."""
    for obj in objs:
        if obj["kind"] == kind and _base_name(obj["metadata"]["name"], name):
            return obj
    return None


def get(objs: list[Obj], kind: str, name: str) -> Obj:
    obj = find(objs, kind, name)
    assert obj is not None, f"no {kind} {name} in the rendered objects"
    return obj


def _base_name(actual: str, wanted: str) -> bool:
    generated = re.fullmatch(re.escape(wanted) + r"-[a-z0-9]{10}", actual)  # a content hash
    return actual == wanted or generated is not None


def of_kind(objs: list[Obj], *kinds: str) -> list[Obj]:
    return [obj for obj in objs if obj["kind"] in kinds]


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Obj, name: str | None = None) -> Obj:
    """The named container of a workload (default: its first)."""
    containers = pod_spec(workload)["containers"]
    if name is None:
        return containers[0]  # type: ignore[no-any-return]
    return next(c for c in containers if c["name"] == name)


def pod_labels(workload: Obj) -> Mapping[str, str]:
    labels: Mapping[str, str] = workload["spec"]["template"]["metadata"].get("labels", {})
    return labels


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a matchLabels-style selector (or Service selector) picks these labels."""
    if not selector:
        return False
    wanted = selector.get("matchLabels", selector) if "matchLabels" in selector else selector
    return all(labels.get(key) == value for key, value in wanted.items())


def config_data(objs: list[Obj], configmap: str) -> Mapping[str, str]:
    data: Mapping[str, str] = get(objs, "ConfigMap", configmap)["data"]
    return data


def secret_data(secret: Obj) -> dict[str, bytes]:
    """A rendered Secret's values, decoded."""
    data = {key: base64.b64decode(value) for key, value in secret.get("data", {}).items()}
    data.update({key: value.encode() for key, value in secret.get("stringData", {}).items()})
    return data


def node_toml(objs: list[Obj]) -> tuple[Obj, dict[str, Any]]:
    """The node workload of an overlay and its parsed mta.toml (from the mounted ConfigMap)."""
    workload = next(
        w for kind, name in NODE_WORKLOADS.items() if (w := find(objs, kind, name)) is not None
    )
    return workload, tomllib.loads(mounted_file(objs, workload, "/etc/mta/mta.toml"))


def mounted_file(
    objs: list[Obj], workload: Obj, path: str, container_name: str | None = None
) -> str:
    """The text a container sees at `path`, when a ConfigMap volume provides it."""
    for mount, volume in mounts(workload, container_name):
        prefix = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix) and "configMap" in volume:
            key = _item_key(volume["configMap"], path[len(prefix) :])
            return config_data(objs, volume["configMap"]["name"])[key]
    raise AssertionError(f"no ConfigMap volume provides {path}")


def _item_key(source: Mapping[str, Any], relative: str) -> str:
    for item in source.get("items", []):
        if item["path"] == relative:
            return str(item["key"])
    return relative


def mounts(workload: Obj, container_name: str | None = None) -> Iterator[tuple[Obj, Obj]]:
    """(volumeMount, volume) pairs of one container."""
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
    for mount in container(workload, container_name).get("volumeMounts", []):
        name = mount["name"]
        claim = {"persistentVolumeClaim": name} if name in claims else {}
        yield mount, volumes.get(name) or claim


def documented_secrets() -> dict[str, set[str]]:
    """Secret name -> documented keys, from the table in k8s/SECRETS.md ({"*"}: any key)."""
    table: dict[str, set[str]] = {}
    for line in (K8S / "SECRETS.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"mta-[a-z0-9-]+", cells[0]):
            table[cells[0]] = _documented_keys(cells[1].split("(")[0])
    return table


def _documented_keys(cell: str) -> set[str]:
    patterns = re.findall(r"`([^`]+)`", cell)
    if patterns:
        return set(patterns)
    if cell.startswith("one key per"):
        return {"*"}
    return {key.strip() for key in cell.split(",")}


def key_documented(keys: set[str], key: str) -> bool:
    """Whether `key` is one of the documented keys; `<domain>` stands for any domain."""
    patterns = (re.escape(k).replace("<domain>", "[a-z0-9.-]+") for k in keys)
    return "*" in keys or any(re.fullmatch(pattern, key) for pattern in patterns)
