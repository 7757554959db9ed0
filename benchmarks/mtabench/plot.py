"""The PNG: delivered msg/s over time (from the sink count every 0.5 s), ours vs Postfix."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

from mtabench.results import OURS, PEER, RunResult, ScenarioResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

COLOURS = {OURS: "tab:blue", PEER: "tab:orange"}
STYLES = ("-", "--", ":", "-.")  # by pair
MIN_INTERVAL = 0.25  # seconds: the last, partial interval of a run would show a false spike


def rates(samples: list[tuple[float, int]]) -> tuple[list[float], list[float]]:
    """Delivered msg/s between consecutive samples, at the end time of each interval."""
    times, values = [], []
    for (t0, c0), (t1, c1) in itertools.pairwise(samples):
        if t1 - t0 >= MIN_INTERVAL:
            times.append(t1)
            values.append((c1 - c0) / (t1 - t0))
    return times, values


def plot(result: ScenarioResult, path: Path) -> str | None:
    """Write the plot; the reason if it could not be drawn (matplotlib missing, no data)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -r benchmarks/requirements.txt)"
    runs = [run for run in result.runs if len(run.samples) > 1]
    if not runs:
        return "no samples"
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for run in runs:
        _draw(top, bottom, run)
    top.set_ylabel("delivered msg/s (0.5 s bins)")
    top.set_title(f"{result.title}: {runs[0].messages} messages per run")
    top.legend(loc="upper right", fontsize="small")
    top.grid(alpha=0.3)
    bottom.set_ylabel("delivered (sink count)")
    bottom.set_xlabel("seconds since the load started")
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None


def _draw(top: Axes, bottom: Axes, run: RunResult) -> None:
    times, values = rates(run.samples)
    colour, style = COLOURS.get(run.mta), STYLES[(run.pair - 1) % len(STYLES)]
    label = f"{run.mta} pair {run.pair}"
    top.plot(times, values, style, label=label, linewidth=1.1, color=colour)
    counts = [count for _, count in run.samples]
    bottom.plot([t for t, _ in run.samples], counts, style, linewidth=1.1, color=colour)
