"""Run a rendered overlay's pods as local processes: what the kubelet would mount is written
under a temporary root (ConfigMaps and Secrets as files, volumes as directories), the config's
absolute paths are moved under that root, listeners go to 127.0.0.1 free ports, and service
URLs (Redis, TSA, relays) point at the local stand-ins the test started.

Secrets the overlay does not generate are user-provided (k8s/SECRETS.md): Secret objects with
test values are added for them, a trustme certificate for the TLS pair and an RSA key for DKIM,
so every pod sees the same values (the TSA token, the Redis password).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.k8s.k8s_support import Obj, config_data, container, find, mounts, secret_data
from tests.support.net import free_port

POD_FIELDS = {"metadata.name": "mta-0", "spec.nodeName": "node-1", "status.hostIP": "127.0.0.1"}


def materialize(objs: list[Obj], workload: Obj, root: Path) -> dict[str, str]:
    """Write the container's volumes under `root`; returns the container's environment."""
    for mount, volume in mounts(workload):
        target = root / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        if "configMap" in volume:
            _write_files(
                target, volume["configMap"], dict(config_data(objs, volume["configMap"]["name"]))
            )
        elif "secret" in volume:
            found = find(objs, "Secret", volume["secret"]["secretName"])
            if found is not None:
                _write_files(target, volume["secret"], secret_data(found))
    return _environment(objs, container(workload))


def _write_files(target: Path, source: Mapping[str, Any], data: Mapping[str, str | bytes]) -> None:
    items = source.get("items") or [{"key": key, "path": key} for key in data]
    for item in items:
        value = data[item["key"]]
        path = target / item["path"]
        path.write_bytes(value.encode() if isinstance(value, str) else value)


def _environment(objs: list[Obj], spec: Obj) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in spec.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif "fieldRef" in entry.get("valueFrom", {}):
            env[entry["name"]] = POD_FIELDS[entry["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = secret_data(find(objs, "Secret", ref["name"]) or {})[
                ref["key"]
            ].decode()
    return env


def add_user_secrets(objs: list[Obj], workload: Obj, raw: Mapping[str, Any]) -> None:
    """Add Secret objects with test values for the user-provided Secrets the node mounts:
    the keys its volume items name, or the files its config names under the mount."""
    issued = functools.cache(lambda: trustme.CA().issue_cert("mta.test"))  # tls.crt + tls.key
    paths = [p for p in _strings(raw) if p.startswith("/")]
    for mount, volume in mounts(workload):
        name = volume.get("secret", {}).get("secretName")
        if name is None or find(objs, "Secret", name) is not None:
            continue
        keys = [item["key"] for item in volume["secret"].get("items", [])]
        prefix = mount["mountPath"].rstrip("/") + "/"
        keys += [p[len(prefix) :] for p in paths if p.startswith(prefix)]
        if mount["mountPath"] in paths:  # a users directory: one test user
            keys.append("ops")
        if keys:
            data = {key: _test_value(key, issued) for key in keys}
            objs.append({"kind": "Secret", "metadata": {"name": name}, "stringData": data})


def _strings(raw: Any) -> list[str]:
    if isinstance(raw, dict):
        return [s for value in raw.values() for s in _strings(value)]
    if isinstance(raw, list):
        return [s for value in raw for s in _strings(value)]
    return [raw] if isinstance(raw, str) else []


def _test_value(key: str, issued: Callable[[], trustme.LeafCert]) -> str:
    if key in ("tls.crt", "tls.key"):
        pem = issued().cert_chain_pems[0] if key == "tls.crt" else issued().private_key_pem
        return pem.bytes().decode()
    if key.endswith(".key"):  # a DKIM private key, <domain>.key
        key_pair = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return key_pair.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    return secrets.token_hex(16)


def relocate(raw: Any, root: Path) -> Any:
    """Every absolute path string in a parsed TOML document, moved under `root`."""
    if isinstance(raw, dict):
        return {key: relocate(value, root) for key, value in raw.items()}
    if isinstance(raw, list):
        return [relocate(value, root) for value in raw]
    if isinstance(raw, str) and raw.startswith("/"):
        return str(root / raw.lstrip("/"))
    return raw


def to_toml(document: Mapping[str, Any]) -> str:
    """TOML text for a parsed config (tables, arrays of tables, scalars and lists)."""
    lines: list[str] = []
    _table(lines, document, [])
    return "\n".join(lines) + "\n"


def _table(lines: list[str], table: Mapping[str, Any], path: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_tables(v)}
    if path and scalars:
        lines.append(f"[{'.'.join(json.dumps(p) for p in path)}]")
    lines.extend(f"{json.dumps(key)} = {json.dumps(value)}" for key, value in scalars.items())
    for key, value in table.items():
        if isinstance(value, dict):
            _table(lines, value, [*path, key])
        elif _is_tables(value):
            for entry in value:
                lines.append(f"[[{'.'.join(json.dumps(p) for p in [*path, key])}]]")
                lines.extend(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in entry.items())


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def loopback_listener() -> str:
    return f"127.0.0.1:{free_port()}"


class Process:
    """`python -m mta ARGS` with a given environment; stdout and stderr kept in files."""

    def __init__(self, workdir: Path, name: str, args: list[str], env: Mapping[str, str]) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("MTA_")}
        self.out, self.err = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mta", *args], stdout=out, stderr=err, env={**base, **env}
            )

    def wait_listening(self, address: str, timeout: float = 30.0) -> None:
        host, _, port = address.rpartition(":")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited {self.proc.returncode}: {self.err.read_text()}")
            with contextlib.closing(socket.socket()) as sock:
                if sock.connect_ex((host, int(port))) == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"nothing listening on {address}: {self.err.read_text()}")

    def records(self) -> list[dict[str, Any]]:
        lines = self.out.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self) -> None:
        """SIGTERM (the kubelet's way); SIGKILL after 15 s."""
        if self.proc.poll() is None:
            self.proc.terminate()

    def wait(self) -> None:
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
