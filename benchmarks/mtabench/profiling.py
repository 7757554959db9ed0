"""py-spy on our node during one run, and a summary of where its CPU time goes.

py-spy samples the running process from outside (no code change, no restart), only while a
thread is on CPU (idle threads, such as the event loop waiting in epoll or a worker blocked in
fsync, should not be counted; but py-spy's idle detection misses some waits, see below). We
record collapsed stacks (`--format raw`, loadable in speedscope or flamegraph.pl) and the CPU
time of each thread from /proc over the same window, and summarise the main thread (the event
loop, which holds the GIL for all Python code) by component and function.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

from mtabench.ours import REPO
from mtabench.procstat import CLOCK_TICKS, PROC
from mtabench.runner import Profiler

SAMPLE_RATE = 100  # Hz: py-spy's default; its own CPU cost competes with the node on 2 cores
ATTACH_SECONDS = 1.0
TOP = 20

# First match wins, tested against the frame's file path from the leaf of a stack upwards, so
# time in the standard library is charged to the component that called it.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("log records (mta/logs.py, orjson)", ("mta/logs.py",)),
    ("spool (spool/: records, writer, group commit)", ("spool/",)),
    ("SMTP front end (mta/smtp/)", ("mta/smtp/",)),
    ("aiosmtpd (SMTP server protocol)", ("aiosmtpd/",)),
    ("accept path (mta/accept.py, inbound)", ("mta/accept.py", "mta/inbound.py")),
    ("queues (mta/queue/)", ("mta/queue/",)),
    ("delivery engine (mta/delivery/)", ("mta/delivery/",)),
    ("aiosmtplib (SMTP client)", ("aiosmtplib/",)),
    ("HTTP inject (mta/http/, mta/inject/)", ("mta/http/", "mta/inject/")),
    ("shaping (shaping/)", ("shaping/",)),
    ("metrics (mta/metrics.py)", ("mta/metrics.py",)),
    ("aiohttp (HTTP server)", ("aiohttp/",)),
    ("jinja2 (templates)", ("jinja2/",)),
    ("stdlib email", ("email/",)),
    ("other mta/", ("mta/",)),
)
EVENT_LOOP = "event loop, transports, other (asyncio/uvloop)"
THREAD_ROOT = "Thread._bootstrap"  # worker threads' stacks start here
# A pool thread waiting for work: py-spy sees a lock wait there as running.
IDLE_LEAVES = (("_worker", "concurrent/futures/thread.py"),)
# Functions worth a line of their own (inclusive): the known costs of the hot path.
SELECTED = (
    ("Logger._log", "logging/__init__.py"),
    ("SMTP.__init__", "aiosmtpd/smtp.py"),
    ("SMTP._getaddr", "aiosmtpd/smtp.py"),
    ("SMTP.push", "aiosmtpd/smtp.py"),
    ("StreamWriter.write", "asyncio/streams.py"),
    ("SMTPProtocol.write", "aiosmtplib/protocol.py"),
    ("uuid4", "uuid.py"),
    ("RecordLog.record", "mta/logs.py"),
    ("Spool.store", "spool/store.py"),
    ("Spool.remove", "spool/store.py"),
)
# Frames on (nearly) every main-thread stack: left out of the inclusive table.
ROOT_PATHS = (
    "<frozen runpy>",
    "mta/__main__.py",
    "mta/cli.py",
    "asyncio/runners.py",
    "uvloop/__init__.py",
)


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user+system) of each live thread of `pid`."""
    seconds = {}
    for task in (PROC / str(pid) / "task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        seconds[int(task.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return seconds


def thread_split(pid: int, before: dict[int, float], after: dict[int, float]) -> dict[str, float]:
    """CPU seconds of the main thread and of all other threads between two snapshots."""
    main = after.get(pid, 0.0) - before.get(pid, 0.0)
    others = sum(cpu - before.get(tid, 0.0) for tid, cpu in after.items() if tid != pid)
    return {"main thread": main, "other threads": others}


def py_spy_binary(python: Path) -> str | None:
    beside = python.parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def py_spy(binary: str, output: Path) -> Profiler:
    """A runner.Profiler: records `pid` into `output` while the body runs."""

    @contextlib.asynccontextmanager
    async def record(pid: int, workdir: Path) -> AsyncIterator[None]:
        with (workdir / "py-spy.out").open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                binary, "record", "--pid", str(pid), "--rate", str(SAMPLE_RATE),
                "--format", "raw", "--output", str(output),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        await asyncio.sleep(ATTACH_SECONDS)
        before = thread_cpu(pid)
        try:
            yield
        finally:
            threads = thread_split(pid, before, thread_cpu(pid))
            output.with_suffix(".threads.json").write_text(json.dumps(threads))
            if process.returncode is None:
                process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                async with asyncio.timeout(60):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()

    return record


@dataclass(frozen=True, slots=True)
class Frame:
    function: str
    path: str

    @classmethod
    def parse(cls, text: str) -> Frame:
        # "function (path/to/file.py:123)"; the line number is dropped to merge a function.
        name, _, where = text.rpartition(" (")
        return cls(name or text, where.rsplit(":", 1)[0] if where else "")

    def label(self) -> str:
        return f"{self.function} ({_short(self.path)})"


def _short(path: str) -> str:
    root = str(REPO) + "/"
    if path.startswith(root):
        return path[len(root) :]
    marker = "site-packages/"
    return path.split(marker, 1)[1] if marker in path else path


def parse_collapsed(lines: Iterable[str]) -> list[tuple[list[Frame], int]]:
    stacks = []
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([Frame.parse(part) for part in stack.split(";")], int(count)))
    return stacks


def component(stack: list[Frame]) -> str:
    for frame in reversed(stack):
        path = _short(frame.path)
        if path.startswith(ROOT_PATHS):
            break  # below the event loop: what runs here is the loop itself (uvloop is C)
        for name, prefixes in COMPONENTS:
            if any(path.startswith(prefix) for prefix in prefixes):
                return name
    return EVENT_LOOP


def summarise(stacks: list[tuple[list[Frame], int]], threads: dict[str, float] | None) -> str:
    """Markdown: thread CPU, then the main thread's samples by component and function."""
    main = [(stack, n) for stack, n in stacks if stack[0].function != THREAD_ROOT]
    workers = [(stack, n) for stack, n in stacks if stack[0].function == THREAD_ROOT]
    busy = [(stack, n) for stack, n in workers if _key(stack[-1]) not in IDLE_LEAVES]
    parts = []
    if threads:
        cpu = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in threads.items())
        parts += [f"CPU over the run (from /proc): {cpu}.", ""]
    main_total = sum(n for _, n in main) or 1
    parts += [
        f"py-spy samples at {SAMPLE_RATE} Hz: main thread {main_total}, other threads "
        f"{sum(n for _, n in busy)} (plus {sum(n for _, n in workers) - sum(n for _, n in busy)}"
        " of pool threads waiting for work, which py-spy counts as active; fdatasync in the"
        " spool writer thread is also counted although it mostly waits for the disk).",
        "",
        _table(
            "main thread: component (innermost classified frame)", _components(main), main_total
        ),
        "",
        _table("main thread: function, self", _self(main).most_common(TOP), main_total),
        "",
        _table("main thread: function, inclusive", _inclusive(main).most_common(TOP), main_total),
        "",
        _table("main thread: selected functions, inclusive", _selected(main), main_total),
        "",
        _table("other threads: function, self", _self(busy).most_common(8), main_total),
    ]
    return "\n".join(parts)


def _key(frame: Frame) -> tuple[str, str]:
    return frame.function, _short(frame.path)


def _components(stacks: list[tuple[list[Frame], int]]) -> list[tuple[str, int]]:
    counts: Counter[str] = Counter()
    for stack, n in stacks:
        counts[component(stack)] += n
    return counts.most_common()


def _self(stacks: list[tuple[list[Frame], int]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for stack, n in stacks:
        counts[stack[-1].label()] += n
    return counts


def _inclusive(stacks: list[tuple[list[Frame], int]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for stack, n in stacks:
        for label in {f.label() for f in stack if not _short(f.path).startswith(ROOT_PATHS)}:
            counts[label] += n
    return counts


def _selected(stacks: list[tuple[list[Frame], int]]) -> list[tuple[str, int]]:
    counts: Counter[tuple[str, str]] = Counter()
    for stack, n in stacks:
        for key in {_key(frame) for frame in stack} & set(SELECTED):
            counts[key] += n
    return [(f"{function} ({path})", counts[(function, path)]) for function, path in SELECTED]


def _table(title: str, rows: list[tuple[str, int]], total: int) -> str:
    lines = [f"| {title} | samples | % of main-thread samples |", "|---|---:|---:|"]
    lines += [f"| `{name}` | {count} | {100 * count / total:.1f}% |" for name, count in rows]
    return "\n".join(lines)
