"""The container image, read from container/Dockerfile (no Docker here): a pinned slim base,
wheels built in one stage and installed in a runtime stage without compilers, a non-root
user, tini as PID 1 in front of `mta`, the spool volume and ports the node uses by default."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field

from mta.config import DEFAULT_HTTP_LISTEN, DEFAULT_SMTP_LISTEN, load_config
from mta.tsa_config import DEFAULT_LISTEN as TSA_DEFAULT_LISTEN
from tests.k8s.k8s_support import ROOT

DOCKERFILE = ROOT / "container" / "Dockerfile"
COMPILERS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cc|[a-z0-9.+-]+-dev)\b")


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"stage {self.name} has no {keyword}"
        return found[-1]


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)  # line continuations
    lines = (line.strip() for line in joined.splitlines())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def _stages() -> tuple[dict[str, str], list[Stage]]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, rest in _instructions(DOCKERFILE.read_text()):
        if keyword == "ARG" and not stages and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
        elif keyword == "FROM":
            base, _, name = rest.partition(" AS ")
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base.strip())
            stages.append(Stage(base, name.strip() or str(len(stages))))
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def test_two_stages_on_one_pinned_slim_python() -> None:
    _, stages = _stages()
    assert len(stages) == 2
    for stage in stages:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", stage.base), stage.base
    build, runtime = stages
    assert any("pip wheel" in run for run in build.all("RUN"))
    copies = runtime.all("COPY")
    assert any(c.startswith(f"--from={build.name} /wheels") for c in copies), copies
    assert any("--no-index" in run and "pip install" in run for run in runtime.all("RUN"))


def test_no_compilers_in_the_runtime_stage() -> None:
    _, (_, runtime) = _stages()
    installs = " ".join(run for run in runtime.all("RUN") if "apt-get install" in run)
    assert "tini" in installs
    packages = re.sub(r"apt-get install\s+(-\S+\s+)*", " ", installs)
    assert not COMPILERS.search(packages.replace("apt-get", "")), packages
    assert not any(c.startswith("--from=") and "/usr/bin" in c for c in runtime.all("COPY"))


def test_runs_as_a_non_root_user() -> None:
    _, (_, runtime) = _stages()
    user = runtime.last("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, user  # numeric: runAsNonRoot can verify it


def test_tini_is_pid_1_and_mta_the_entrypoint() -> None:
    _, (_, runtime) = _stages()
    entrypoint = json.loads(runtime.last("ENTRYPOINT"))
    assert entrypoint[0].endswith("/tini") and entrypoint[-1] == "mta", entrypoint
    command = json.loads(runtime.last("CMD"))
    assert command == ["serve", "--config", "/etc/mta/mta.toml"]


def test_ports_and_volume_match_the_defaults() -> None:
    _, (_, runtime) = _stages()
    exposed = {int(port) for line in runtime.all("EXPOSE") for port in line.split()}
    defaults = [*DEFAULT_SMTP_LISTEN, *DEFAULT_HTTP_LISTEN, TSA_DEFAULT_LISTEN]
    assert exposed == {int(listen.rpartition(":")[2]) for listen in defaults}
    assert json.loads(runtime.last("VOLUME")) == ["/var/spool/mta"]
    assert "MTA_CONFIG=/etc/mta/mta.toml" in " ".join(runtime.all("ENV"))


def test_the_images_config_is_valid_and_spools_on_the_volume() -> None:
    config = load_config(ROOT / "container" / "mta.toml", environ={})
    assert str(config.spool.path) == "/var/spool/mta"
    assert config.smtp.listen == DEFAULT_SMTP_LISTEN and config.http.listen == DEFAULT_HTTP_LISTEN
    done = subprocess.run(
        [sys.executable, "-m", "mta", "check-config", str(ROOT / "container" / "mta.toml")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "var", "tests"} <= ignored
    copied = " ".join(kw_args for _, kw_args in _instructions(DOCKERFILE.read_text()))
    for needed in ("pyproject.toml", "README.md", "mta", "spool", "shaping", "container"):
        assert needed not in ignored and needed in copied
    makefile = (ROOT / "Makefile").read_text()
    assert "docker build -f container/Dockerfile" in makefile
