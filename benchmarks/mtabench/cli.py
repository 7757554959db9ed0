"""`python benchmarks/run.py`: every scenario, ours and Postfix alternately, then the reports."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtabench import figures, machine, profiling, report, scenarios
from mtabench.ours import REPO, default_python
from mtabench.plot import plot
from mtabench.postfix import parse_setting
from mtabench.results import OURS, PEER, RunResult, ScenarioResult
from mtabench.runner import RunOptions, probe_inject, run_one

RESULTS_DIR = REPO / "benchmarks" / "results"
DEFAULT_RUN_TIMEOUT = 300.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="Our MTA against a throwaway Postfix, A B A B, into smtp-sink.",
    )
    keys = ", ".join(
        [s.key for s in scenarios.SCENARIOS] + [f"{k} (not by default)" for k in figures.KEYS]
    )
    parser.add_argument("--pairs", type=int, default=3, help="A B pairs per scenario (3)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the messages")
    parser.add_argument("--messages", type=int, help="messages per run, every scenario")
    parser.add_argument("--scenarios", nargs="+", metavar="KEY", help=f"subset of: {keys}")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument(
        "--figures-json",
        type=Path,
        default=RESULTS_DIR / "figures.json",
        help="the latency and scale figures (when those scenarios run)",
    )
    parser.add_argument(
        "--scale-messages", type=int, default=figures.SCALE_MESSAGES, help="scale: N queued"
    )
    parser.add_argument(
        "--latency-rate", type=float, default=figures.LATENCY_RATE, help="latency: msg/s"
    )
    parser.add_argument(
        "--latency-seconds", type=float, default=figures.LATENCY_SECONDS, help="latency: s"
    )
    parser.add_argument("--plot", type=Path, default=RESULTS_DIR / "throughput.png")
    parser.add_argument("--markdown", type=Path, default=RESULTS_DIR / "latest.md")
    parser.add_argument(
        "--profile",
        type=Path,
        default=RESULTS_DIR / "profile",
        help="py-spy output prefix: PREFIX.txt (collapsed stacks) and PREFIX.md (summary)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy run")
    parser.add_argument("--profile-only", action="store_true", help="only the py-spy run")
    parser.add_argument(
        "--profile-scenario",
        default=scenarios.MAIN.key,
        metavar="KEY",
        help=f"the scenario of the py-spy run ({scenarios.MAIN.key})",
    )
    parser.add_argument(
        "--replot", type=Path, metavar="JSON", help="only redraw --plot from a JSON result"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp"), help="spools go here")
    parser.add_argument("--keep", action="store_true", help="keep each run's directory")
    parser.add_argument("--run-timeout", type=float, default=DEFAULT_RUN_TIMEOUT)
    parser.add_argument(
        "--postfix-set",
        type=parse_setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a main.cf setting for the peer on top of its stock config (repeatable), "
        "e.g. in_flow_delay=0",
    )
    parser.add_argument("--python", type=Path, default=default_python(), help="runs `mta`")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.replot is not None:
        return _replot(args.replot, args.plot)
    wanted_figures = [key for key in args.scenarios or [] if key in figures.KEYS]
    ab_keys = [key for key in args.scenarios or [] if key not in figures.KEYS]
    try:
        chosen = [] if wanted_figures and not ab_keys else scenarios.select(ab_keys)
        scenarios.select([args.profile_scenario])
    except ValueError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 2
    missing = [tool for tool in ("smtp-source", "smtp-sink", "postfix") if not _have(tool)]
    if missing:
        print(f"run.py: {', '.join(missing)} missing: run benchmarks/run.sh", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    workroot = Path(tempfile.mkdtemp(prefix="mta-bench-", dir=args.workdir))
    workroot.chmod(0o755)  # Postfix's daemons run as the postfix user and must reach their dirs
    try:
        return asyncio.run(_main(args, chosen, workroot, wanted_figures))
    finally:
        if not args.keep:
            shutil.rmtree(workroot, ignore_errors=True)


def _replot(source: Path, target: Path) -> int:
    document = json.loads(source.read_text())
    first = next((s for s in document["scenarios"] if s["runs"]), None)
    if first is None:
        print(f"run.py: no runs in {source}", file=sys.stderr)
        return 1
    problem = plot(ScenarioResult.from_json(first), target)
    print(f"plot: {problem or target}")
    return 0 if problem is None else 1


def _have(tool: str) -> bool:
    return shutil.which(tool) is not None or Path("/usr/sbin", tool).exists()


async def _main(
    args: argparse.Namespace,
    chosen: list[scenarios.Scenario],
    workroot: Path,
    wanted_figures: list[str],
) -> int:
    options = RunOptions(
        workroot, args.python, args.run_timeout, args.keep, tuple(args.postfix_set)
    )
    info = machine.describe(workroot)
    started = time.monotonic()
    _say(f"machine: {machine.one_line(info)}")
    if info["workdir_filesystem"] in ("tmpfs", "ramfs"):
        _say("warning: the work directory is in memory; fsync costs nothing there")
    if wanted_figures:
        await _figures(args, options, info, wanted_figures)
        if not chosen:
            return 0
    results: list[ScenarioResult] = []
    profile_md: str | None = None
    for scenario in [] if args.profile_only else chosen:
        results.append(await _scenario(scenario, args, options))
    if args.profile_only or not args.no_profile:
        profile_md = await _profile(args, options, scenarios.select([args.profile_scenario])[0])
    elapsed = time.monotonic() - started
    if args.profile_only:
        return 0 if profile_md else 1
    _emit(args, info, results, profile_md, elapsed)
    return 0


async def _scenario(
    scenario: scenarios.Scenario, args: argparse.Namespace, options: RunOptions
) -> ScenarioResult:
    result = ScenarioResult(scenario.key, scenario.title, scenario.target)
    result.unavailable = scenario.unavailable()
    if result.unavailable:
        _say(f"{scenario.key}: {result.unavailable}")
        return result
    if scenario.ours.kind == "http":
        # The API may be in the tree but not serving yet (a stand-in answering 503).
        reason = await probe_inject(options)
        if reason is not None:
            result.unavailable = f"n/a: HTTP inject not available ({reason})"
            _say(f"{scenario.key}: {result.unavailable}")
            return result
    messages = scenario.messages_for(args.messages, args.quick)
    for pair in range(1, args.pairs + 1):
        for mta in (OURS, PEER):
            run = await run_one(scenario, mta, pair, messages, options)
            result.runs.append(run)
            _say(_progress(scenario, run, args.pairs))
    return result


async def _figures(
    args: argparse.Namespace, options: RunOptions, info: dict[str, Any], keys: list[str]
) -> None:
    """The reported-figure scenarios (no Postfix run, no ratio): printed and written as JSON."""
    document: dict[str, Any] = {
        "command": shlex.join(["benchmarks/run.py", *sys.argv[1:]]),
        "machine": info,
        "figures": [],
    }
    for key in keys:
        started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        _say(f"{key}: started {started}")
        if key == "latency":
            result = await figures.run_latency(
                options, args.latency_rate, args.latency_seconds, figures.LATENCY_CONNECTIONS
            )
        else:
            result = await figures.run_scale(options, args.scale_messages)
        result["started"] = started
        document["figures"].append(result)
        print(json.dumps(result, indent=1), flush=True)
    document["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    args.figures_json.parent.mkdir(parents=True, exist_ok=True)
    args.figures_json.write_text(json.dumps(document, indent=1) + "\n")
    _say(f"figures JSON: {args.figures_json}")


def _progress(scenario: scenarios.Scenario, run: RunResult, pairs: int) -> str:
    head = f"{scenario.key} pair {run.pair}/{pairs} {run.mta:<7}"
    if not run.ok:
        return f"{head} FAILED after {run.delivered} delivered: {'; '.join(run.errors)}"
    return (
        f"{head} {run.messages} msgs: e2e {run.e2e_rate:,.0f} msg/s, "
        f"inject {run.inject_rate:,.0f} msg/s, CPU {run.cpu_seconds:.1f} s, "
        f"RSS {run.peak_rss_bytes / report.MB:,.0f} MB, other CPU {run.other_cpu_seconds:.1f} s"
    )


async def _profile(
    args: argparse.Namespace, options: RunOptions, scenario: scenarios.Scenario
) -> str | None:
    binary = profiling.py_spy_binary(args.python)
    if binary is None:
        _say("profile skipped: py-spy not installed (pip install -r benchmarks/requirements.txt)")
        return None
    raw = args.profile.with_suffix(".txt")
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.unlink(missing_ok=True)
    messages = scenario.messages_for(args.messages, args.quick)
    _say(f"profile: {scenario.key}, ours once under py-spy ({messages} messages)")
    run = await run_one(scenario, OURS, -1, messages, options, profiling.py_spy(binary, raw))
    if not raw.exists():
        _say(f"profile failed: py-spy wrote nothing ({'; '.join(run.errors)})")
        return None
    stacks = profiling.parse_collapsed(raw.read_text().splitlines())
    threads_file = raw.with_suffix(".threads.json")
    threads = json.loads(threads_file.read_text()) if threads_file.exists() else None
    rate = f"{run.e2e_rate:,.0f} msg/s e2e" if run.e2e_rate else f"failed: {run.errors}"
    summary = (
        f"Profiled run ({scenario.title}, {messages} messages, under py-spy: {rate}).\n\n"
        + profiling.summarise(stacks, threads)
    )
    args.profile.with_suffix(".md").write_text(summary + "\n")
    _say(f"profile: {raw} and {args.profile.with_suffix('.md')}")
    return summary


def _emit(
    args: argparse.Namespace,
    info: dict[str, Any],
    results: list[ScenarioResult],
    profile_md: str | None,
    elapsed: float,
) -> None:
    command = shlex.join(["benchmarks/run.py", *sys.argv[1:]])
    print()
    for result in results:
        if result.runs:
            print(report.scenario_heading(result))
            print(report.text(report.runs_table(result)))
            print()
    print("Summary (ratios ours/Postfix: median over pairs; CPU/msg below 1 = ours cheaper)")
    print(report.text(report.summary_table(results)))
    print(f"\n{len(results)} scenarios in {elapsed / 60:.1f} min")
    document = {
        "command": command,
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "elapsed_seconds": round(elapsed, 1),
        "machine": info,
        "pairs": args.pairs,
        "scenarios": [result.to_json() for result in results],
    }
    for path in (args.json, args.markdown):
        path.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=1) + "\n")
    print(f"JSON: {args.json}")
    plotted = next((r for r in results if r.runs), None)  # the first row
    if plotted is not None:
        problem = plot(plotted, args.plot)
        print(f"plot: {problem or args.plot}")
    args.markdown.write_text(_markdown(command, info, results, profile_md) + "\n")
    print(f"Markdown: {args.markdown}")


def _markdown(
    command: str, info: dict[str, Any], results: list[ScenarioResult], profile_md: str | None
) -> str:
    parts = [
        f"Command: `{command}`",
        "",
        f"Machine: {machine.one_line(info)}",
        "",
        report.markdown(report.summary_table(results)),
    ]
    for result in results:
        if result.runs:
            parts += ["", f"### {report.scenario_heading(result)}", ""]
            parts.append(report.markdown(report.runs_table(result)))
    if profile_md:
        parts += ["", "### Profile", "", profile_md]
    return "\n".join(parts)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
