"""Text tables for stdout and the Markdown of the latest run."""

from __future__ import annotations

from mtabench.results import OURS, PEER, RunResult, ScenarioResult

MB = 1024 * 1024
RUN_HEADER = (
    "pair",
    "mta",
    "e2e msg/s",
    "inject msg/s",
    "CPU s",
    "CPU ms/msg",
    "RSS MB",
    "PSS MB",
    "other CPU s",
    "status",
)
SUMMARY_HEADER = (
    "scenario",
    "msgs/run",
    "ours e2e",
    "postfix e2e",
    "ratio e2e",
    "ratio inject",
    "ratio CPU/msg",
    "verdict",
)


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _run_row(run: RunResult) -> tuple[str, ...]:
    status = "ok" if run.ok else "FAILED: " + "; ".join(run.errors[:1])[:60]
    return (
        str(run.pair),
        run.mta,
        _num(run.e2e_rate),
        _num(run.inject_rate),
        _num(run.cpu_seconds, 1),
        _num(run.cpu_ms_per_message, 2),
        _num(run.peak_rss_bytes / MB, 0),
        _num(run.peak_pss_bytes / MB, 0),
        _num(run.other_cpu_seconds, 1),
        status,
    )


def _median_row(result: ScenarioResult, mta: str) -> tuple[str, ...]:
    rss = result.median_of(mta, "peak_rss_bytes")
    pss = result.median_of(mta, "peak_pss_bytes")
    return (
        "median",
        mta,
        _num(result.median_of(mta, "e2e_rate")),
        _num(result.median_of(mta, "inject_rate")),
        _num(result.median_of(mta, "cpu_seconds"), 1),
        _num(result.median_of(mta, "cpu_ms_per_message"), 2),
        _num(None if rss is None else rss / MB, 0),
        _num(None if pss is None else pss / MB, 0),
        _num(result.median_of(mta, "other_cpu_seconds"), 1),
        "",
    )


def runs_table(result: ScenarioResult) -> list[tuple[str, ...]]:
    rows = [RUN_HEADER, *(_run_row(run) for run in result.runs)]
    rows += [_median_row(result, OURS), _median_row(result, PEER)]
    return rows


def summary_table(results: list[ScenarioResult]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [SUMMARY_HEADER]
    for result in results:
        messages = str(result.runs[0].messages) if result.runs else "-"
        rows.append(
            (
                result.key,
                messages,
                _num(result.median_of(OURS, "e2e_rate")),
                _num(result.median_of(PEER, "e2e_rate")),
                _ratio(result.e2e_ratio),
                _ratio(result.inject_ratio),
                _ratio(result.cpu_ratio),
                result.verdict,
            )
        )
    return rows


def text(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) if i in (0, 1) or i == len(row) - 1 else cell.rjust(w)
                 for i, (cell, w) in enumerate(zip(row, widths, strict=True))]  # fmt: skip
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(rows: list[tuple[str, ...]]) -> str:
    head, *body = rows
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in body]
    return "\n".join(lines)


def scenario_heading(result: ScenarioResult) -> str:
    return f"{result.key}: {result.title}"
