"""Every overlay renders with `kubectl kustomize`, and every object validates against the
pinned Kubernetes version's schema (strict: unknown fields are errors)."""

from __future__ import annotations

import kubernetes_validate
import pytest

from tests.k8s.k8s_support import (
    CUSTOM_KINDS,
    KUBERNETES_VERSION,
    OVERLAYS,
    Obj,
    of_kind,
    render,
)

# API groups whose schemas kubernetes-validate has ("" is the core group, as in "v1").
CORE_GROUPS = {"", "apps", "policy", "networking.k8s.io", "autoscaling"}


def _validate(obj: Obj) -> None:
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_pinned_schema(overlay: str) -> None:
    objs = render(overlay)
    assert objs, f"k8s/{overlay} rendered nothing"
    errors = []
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue  # checked by test_custom_resources_are_well_formed
        try:
            _validate(obj)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {exc.path}")
    assert not errors, "\n".join(errors)


def test_the_validator_rejects_a_broken_object() -> None:
    statefulset = of_kind(render("overlays/prod"), "StatefulSet")[0]
    statefulset["spec"]["podManagementPolicy"] = 3  # a number where a string goes
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(statefulset)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_known_custom_resources(overlay: str) -> None:
    for obj in render(overlay):
        group = obj["apiVersion"].rpartition("/")[0]
        if group not in CORE_GROUPS:
            assert (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS, obj["kind"]


def test_custom_resources_are_well_formed() -> None:
    objs = render("overlays/prod")
    (monitor,) = of_kind(objs, "ServiceMonitor")
    for endpoint in monitor["spec"]["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "basicAuth", "scheme"}
        assert endpoint["path"] == "/metrics"
    (rule,) = of_kind(objs, "PrometheusRule")
    for group in rule["spec"]["groups"]:
        assert group["name"] and group["rules"]
        for alert in group["rules"]:
            assert set(alert) <= {"alert", "expr", "for", "labels", "annotations"}, alert
            assert alert["alert"] and alert["expr"].strip()
            assert alert["labels"]["severity"] in {"warning", "critical"}
            assert alert["annotations"]["summary"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_have_unique_names_and_one_namespace(overlay: str) -> None:
    objs = render(overlay)
    keys = [(obj["kind"], obj["metadata"]["name"]) for obj in objs]
    assert len(keys) == len(set(keys))
    namespaces = {obj["metadata"].get("namespace") for obj in objs if obj["kind"] != "Namespace"}
    if overlay != "observability":  # applied with -n into the node's namespace
        assert len(namespaces) == 1 and None not in namespaces, namespaces
