"""Per-run measurements and the per-scenario summary (medians, ratios ours/Postfix)."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

OURS = "ours"
PEER = "postfix"


@dataclass(slots=True)
class RunResult:
    scenario: str
    mta: str  # OURS or PEER
    pair: int  # 1-based; -1 for the profiling run
    messages: int
    delivered: int = 0  # the sink's count at the end
    e2e_seconds: float | None = None  # load start -> sink has every message
    inject_seconds: float | None = None  # load start -> load generator done
    cpu_seconds: float | None = None  # the MTA's processes, over the e2e window
    machine_cpu_seconds: float | None = None  # every process on the machine, same window
    peak_rss_bytes: int = 0
    peak_pss_bytes: int = 0
    max_processes: int = 0
    errors: list[str] = field(default_factory=list)
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds, sink count)

    @property
    def ok(self) -> bool:
        return not self.errors and self.e2e_seconds is not None

    @property
    def e2e_rate(self) -> float | None:
        return self.messages / self.e2e_seconds if self.ok and self.e2e_seconds else None

    @property
    def inject_rate(self) -> float | None:
        return self.messages / self.inject_seconds if self.ok and self.inject_seconds else None

    @property
    def other_cpu_seconds(self) -> float | None:
        """Busy CPU not spent by the MTA: load generator, sink, harness, and anyone else's
        work on a shared machine (the noise to watch)."""
        if self.machine_cpu_seconds is None or self.cpu_seconds is None:
            return None
        return self.machine_cpu_seconds - self.cpu_seconds

    @property
    def cpu_ms_per_message(self) -> float | None:
        if not self.ok or self.cpu_seconds is None:
            return None
        return 1000 * self.cpu_seconds / self.messages

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            ok=self.ok,
            e2e_rate=self.e2e_rate,
            inject_rate=self.inject_rate,
            cpu_ms_per_message=self.cpu_ms_per_message,
            other_cpu_seconds=self.other_cpu_seconds,
        )
        return data


def run_from_json(data: dict[str, Any]) -> RunResult:
    """A RunResult back from `RunResult.to_json()` (derived fields dropped)."""
    names = set(RunResult.__dataclass_fields__)
    run = RunResult(**{key: value for key, value in data.items() if key in names})
    run.samples = [(t, count) for t, count in run.samples]
    return run


def median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def pair_ratios(runs: list[RunResult], metric: str, *, inverse: bool = False) -> list[float | None]:
    """ours/peer of `metric` for each pair (peer/ours with `inverse`, for costs)."""
    by_pair: dict[int, dict[str, RunResult]] = {}
    for run in runs:
        by_pair.setdefault(run.pair, {})[run.mta] = run
    ratios: list[float | None] = []
    for pair in sorted(by_pair):
        ours, peer = by_pair[pair].get(OURS), by_pair[pair].get(PEER)
        a = getattr(ours, metric) if ours else None
        b = getattr(peer, metric) if peer else None
        if a and b:
            ratios.append(b / a if inverse else a / b)
        else:
            ratios.append(None)
    return ratios


@dataclass(slots=True)
class ScenarioResult:
    key: str
    title: str
    target: float | None
    unavailable: str | None = None
    runs: list[RunResult] = field(default_factory=list)

    def of(self, mta: str) -> list[RunResult]:
        return [run for run in self.runs if run.mta == mta]

    def median_of(self, mta: str, metric: str) -> float | None:
        return median([getattr(run, metric) for run in self.of(mta)])

    @property
    def e2e_ratio(self) -> float | None:
        """The median over pairs of (ours e2e msg/s) / (Postfix e2e msg/s)."""
        return median(pair_ratios(self.runs, "e2e_rate"))

    @property
    def inject_ratio(self) -> float | None:
        return median(pair_ratios(self.runs, "inject_rate"))

    @property
    def cpu_ratio(self) -> float | None:
        """ours/Postfix CPU per message: below 1 means we spend less CPU per message."""
        return median(pair_ratios(self.runs, "cpu_ms_per_message"))

    @property
    def verdict(self) -> str:
        if self.unavailable:
            return self.unavailable
        ratio = self.e2e_ratio
        if ratio is None:
            return "no result"
        if self.target is None:
            return "measured"
        return f"{'meets' if ratio >= self.target else 'below'} target >= {self.target:g}"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScenarioResult:
        runs = [run_from_json(run) for run in data["runs"]]
        return cls(data["key"], data["title"], data["target"], data["unavailable"], runs)

    def to_json(self) -> dict[str, Any]:
        summary = {
            mta: {
                metric: self.median_of(mta, metric)
                for metric in (
                    "e2e_rate",
                    "inject_rate",
                    "cpu_seconds",
                    "cpu_ms_per_message",
                    "peak_rss_bytes",
                    "peak_pss_bytes",
                )
            }
            for mta in (OURS, PEER)
        }
        return {
            "key": self.key,
            "title": self.title,
            "target": self.target,
            "unavailable": self.unavailable,
            "verdict": self.verdict,
            "median_ratio_e2e": self.e2e_ratio,
            "median_ratio_inject": self.inject_ratio,
            "median_ratio_cpu_per_message": self.cpu_ratio,
            "pair_ratios_e2e": pair_ratios(self.runs, "e2e_rate"),
            "medians": summary,
            "runs": [run.to_json() for run in self.runs],
        }
