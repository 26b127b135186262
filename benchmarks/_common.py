"""Shared helpers for the benchmark scripts (not a benchmark itself).

Every benchmark:

* starts an in-process ``Emulator`` (on a thread of the benchmark process) whose request
  handler is wrapped so each request gets a ``time.monotonic()`` arrival and completion time;
* writes a generated test suite, a catalogue and a timing ``conftest.py`` into a temp dir;
* runs pytest in a subprocess against the emulator (``CEKURA_API_KEY`` + ``CEKURA_API_URL``,
  ``--cekura-poll-interval``, ``-p no:cacheprovider``, ``-q``), reaping it with ``os.wait4`` so
  the peak RSS of that one child is known;
* prints a table: case, figure, baseline, ratio, target, met.

``time.monotonic()`` is CLOCK_MONOTONIC on Linux, shared by all processes, so times recorded
by the pytest child (in the timing conftest) and by the emulator (in this process) are on one
axis.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from anywhere: import the plugin's emulator from the tree
    sys.path.insert(0, str(ROOT))

from pytest_cekura.emulator import Emulator, load_catalogue  # noqa: E402

API_KEY = "bench-key-0123456789"
BULK_PATH = "/runs/bulk"
POST_MARK = "run_scenarios"


# ------------------------------------------------------------------------------- emulator


@dataclass(frozen=True)
class Hit:
    """One request the emulator answered, with arrival and completion times (monotonic)."""

    t_in: float
    t_out: float
    method: str
    path: str
    status: int
    query: str = ""

    @property
    def is_post(self) -> bool:
        return self.method == "POST" and POST_MARK in self.path

    @property
    def is_bulk(self) -> bool:
        return self.method == "GET" and BULK_PATH in self.path

    @property
    def is_preflight(self) -> bool:
        return self.method == "GET" and ("/scenarios" in self.path or "/aiagents/" in self.path)


class TimedEmulator:
    """An ``Emulator`` whose every Cekura request is logged with timestamps.

    Wraps the (private) request handler of this one instance, in this process only: the
    plugin's code is not changed.
    """

    def __init__(
        self,
        scenarios: dict[int, tuple[str, float]],
        time_scale: float,
        tmp: Path,
        *,
        latency: float = 0.0,
    ):
        """``latency``: seconds added to every Cekura request before it is answered (an
        emulated network round trip; requests on separate connections still overlap)."""
        lines = []
        for sid, (outcome, duration) in sorted(scenarios.items()):
            lines.append(
                f'[[scenario]]\nid = {sid}\noutcome = "{outcome}"\nduration_s = {duration:.3f}\n'
            )
        path = tmp / "catalogue.toml"
        path.write_text("\n".join(lines))
        self.emulator = Emulator(load_catalogue(path), api_key=API_KEY, time_scale=time_scale)
        self.time_scale = time_scale
        self.hits: list[Hit] = []
        api = self.emulator._api
        handle = api.handle

        def timed(request: Any) -> Any:
            t_in = time.monotonic()
            if latency and not request.path.startswith("/_emulator"):
                time.sleep(latency)
            response = handle(request)
            if not request.path.startswith("/_emulator"):
                query = ",".join(request.query.get("run_ids", [])[-1:])
                hit = Hit(
                    t_in, time.monotonic(), request.method, request.path, response.status, query
                )
                self.hits.append(hit)
            return response

        api.handle = timed  # type: ignore[method-assign]

    def __enter__(self) -> TimedEmulator:
        self.emulator.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.emulator.stop()

    @property
    def url(self) -> str:
        return self.emulator.url

    def reset(self) -> None:
        self.emulator.reset()
        self.hits.clear()

    def posts(self) -> list[Hit]:
        return [h for h in self.hits if h.is_post]

    def bulk_gets(self) -> list[Hit]:
        return [h for h in self.hits if h.is_bulk]

    def preflight_gets(self) -> list[Hit]:
        return [h for h in self.hits if h.is_preflight]

    def poll_cycles(self, interval: float) -> list[list[Hit]]:
        """Bulk GETs grouped into poll cycles: a gap of half an interval starts a new one."""
        cycles: list[list[Hit]] = []
        last_out = -1e9
        for hit in sorted(self.bulk_gets(), key=lambda h: h.t_in):
            if not cycles or hit.t_in - last_out >= interval / 2:
                cycles.append([])
            cycles[-1].append(hit)
            last_out = hit.t_out
        return cycles

    def other(self) -> list[Hit]:
        return [h for h in self.hits if not (h.is_post or h.is_bulk or h.is_preflight)]

    def first_post(self) -> float:
        posts = self.posts()
        if not posts:
            raise RuntimeError("no run-starting POST reached the emulator")
        return min(h.t_in for h in posts)


def spread_durations(n: int, low: float = 60.0, high: float = 300.0, seed: int = 7) -> list[float]:
    """``n`` emulated call lengths spread evenly over [low, high], shuffled; the longest is
    always ``high`` (so the physical limit is known exactly)."""
    if n == 1:
        return [high]
    values = [low + (high - low) * i / (n - 1) for i in range(n)]
    random.Random(seed).shuffle(values)
    return values


# ------------------------------------------------------------------------- suite writing

TIMING_CONFTEST = '''
"""Written by benchmarks/_common.py: records when things happen in this pytest process."""
import json, os, resource, time

_T = {"tests": [], "start": time.monotonic()}


def pytest_sessionstart(session):
    _T["sessionstart"] = time.monotonic()


def pytest_collection_finish(session):
    _T["collected"] = time.monotonic()
    _T["n_items"] = len(session.items)


def pytest_runtest_logreport(report):
    # The phase that decides a test: a failed/errored/skipped setup, or the call.
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _T["tests"].append([report.nodeid, report.outcome, time.monotonic()])


def pytest_unconfigure(config):
    _T["end"] = time.monotonic()
    _T["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:  # this process's own peak (ru_maxrss also counts the benchmark's, see PytestRun)
        with open("/proc/self/status") as status:
            _T["vm_hwm_kb"] = next(
                int(line.split()[1]) for line in status if line.startswith("VmHWM:")
            )
    except (OSError, StopIteration, ValueError):
        pass
    out = os.environ.get("BENCH_TIMING_OUT")
    if out:
        with open(out, "w") as f:
            json.dump(_T, f)
'''

NAIVE_CONFTEST = '''
"""Written by benchmarks/_common.py: the naive baseline plugin.

Each test, in turn: POST one scenario, then poll results/{id}/ every interval until the
result is terminal. No batching, no background poller, no sharing: what a first attempt
at "call Cekura from a test" looks like.
"""
import os, time

import httpx
import pytest

URL = os.environ["CEKURA_API_URL"]
KEY = os.environ["CEKURA_API_KEY"]
INTERVAL = float(os.environ["NAIVE_POLL_INTERVAL"])
_client = httpx.Client(base_url=URL, headers={"X-CEKURA-API-KEY": KEY}, timeout=30)


def pytest_configure(config):
    config.addinivalue_line("markers", "naive_scenario(id): run one Cekura scenario")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    mark = item.get_closest_marker("naive_scenario")
    if mark is None:
        return
    created = _client.post(
        "/test_framework/v1/scenarios-external/run_scenarios_livekit_v2/",
        json={"scenarios": [{"scenario": mark.args[0]}], "frequency": 1, "name": item.nodeid},
    )
    created.raise_for_status()
    result_id = created.json()["id"]
    while True:
        result = _client.get(f"/test_framework/v1/results/{result_id}/")
        result.raise_for_status()
        body = result.json()
        if body["status"] in ("completed", "failed"):
            break
        time.sleep(INTERVAL)
    runs = body["runs"].values()
    assert all(run["success"] for run in runs), "a run failed"
'''


@dataclass
class TestSpec:
    """One generated test: its scenario ids and marker keywords."""

    name: str
    scenario_ids: Sequence[int]
    frequency: int = 1
    marker: str = "cekura_scenario"
    extra: str = ""  # extra marker keywords, e.g. ', provider="voice", agent=1'

    def source(self) -> str:
        ids = ", ".join(str(i) for i in self.scenario_ids)
        freq = f", frequency={self.frequency}" if self.marker == "cekura_scenario" else ""
        return (
            f"@pytest.mark.{self.marker}({ids}{freq}{self.extra})\ndef {self.name}():\n    pass\n\n"
        )


def write_suite(
    folder: Path,
    tests: Iterable[TestSpec],
    *,
    naive: bool = False,
    per_file: int = 500,
    filename: str = "test_bench",
    conftest_extra: str = "",
) -> None:
    """Write the tests (in order, ``per_file`` per module), a pytest.ini and the conftest."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n")
    conftest = TIMING_CONFTEST + (NAIVE_CONFTEST if naive else "") + conftest_extra
    (folder / "conftest.py").write_text(conftest)
    tests = list(tests)
    for index in range(0, max(len(tests), 1), per_file):
        chunk = tests[index : index + per_file]
        body = "import pytest\n\n\n" + "".join(t.source() for t in chunk)
        (folder / f"{filename}_{index // per_file:03d}.py").write_text(body)


def write_plain_suite(folder: Path, n_tests: int, per_file: int = 500) -> None:
    """A trivial suite without any Cekura marker (for the unused-plugin overhead)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(TIMING_CONFTEST)
    for index in range(0, n_tests, per_file):
        count = min(per_file, n_tests - index)
        body = "".join(f"def test_{index + i}():\n    assert {i} == {i}\n\n" for i in range(count))
        (folder / f"test_plain_{index // per_file:03d}.py").write_text(body)


# ---------------------------------------------------------------------------- running


@dataclass
class PytestRun:
    returncode: int
    wall: float  # subprocess wall time (spawn to reap), seconds
    t_spawn: float  # monotonic time of the spawn
    #: Peak RSS of the pytest process alone: its VmHWM (/proc/PID/status), the high-water
    #: mark of its own address space, sampled until it exits.
    maxrss_mb: float
    cpu: float  # user + system CPU seconds of the pytest process, from wait4's rusage
    timing: dict[str, Any]
    stdout: str
    stderr: str
    #: wait4's ru_maxrss, for comparison only: Linux carries the parent's peak RSS into
    #: the child at exec (the spawn borrows the parent's address space, whose high-water
    #: mark exec records), so it is at least this benchmark process's own RSS (the
    #: emulator and its runs), not the plugin's.
    rusage_maxrss_mb: float = 0.0

    @property
    def finish_times(self) -> list[tuple[str, str, float]]:
        return [tuple(t) for t in self.timing.get("tests", [])]  # type: ignore[misc]

    def last_outcome(self) -> float:
        return max(t for _, _, t in self.finish_times)

    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, outcome, _ in self.finish_times:
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    def summary_line(self) -> str:
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def run_pytest(
    folder: Path,
    url: str | None,
    *,
    poll_interval: float | None = None,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 900,
) -> PytestRun:
    """Run ``python -m pytest -q -p no:cacheprovider`` in ``folder`` and reap it with wait4."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if poll_interval is not None:
        cmd.append(f"--cekura-poll-interval={poll_interval}")
    cmd += list(args)
    child_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CEKURA_", "PYTEST_")) and k != "PYTHONPATH"
    }
    child_env["PYTHONDONTWRITEBYTECODE"] = "1"
    # The plugin of this tree (the editable install's path comes later on sys.path), so a
    # copy of the repository at one commit benchmarks that commit's plugin.
    child_env["PYTHONPATH"] = str(ROOT)
    if url is not None:
        child_env["CEKURA_API_KEY"] = API_KEY
        child_env["CEKURA_API_URL"] = url
    timing_file = folder / ".bench_timing.json"
    if timing_file.exists():
        timing_file.unlink()
    child_env["BENCH_TIMING_OUT"] = str(timing_file)
    child_env.update(env or {})
    out_path = folder / ".bench_stdout.txt"
    err_path = folder / ".bench_stderr.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        t_spawn = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=folder, env=child_env, stdout=out, stderr=err)
        deadline = t_spawn + timeout
        hwm_kb = 0
        while True:  # wait4 gives this child's own rusage (RUSAGE_CHILDREN is cumulative)
            # Sampled before reaping: once reaped, /proc no longer has it. VmHWM only grows.
            hwm_kb = max(hwm_kb, _vm_hwm_kb(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.monotonic() - t_spawn
        proc.returncode = os.waitstatus_to_exitcode(status)
    timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    # The child's peak as the conftest saw it at pytest_unconfigure (its own VmHWM too).
    hwm_kb = max(hwm_kb, int(timing.get("vm_hwm_kb", 0)))
    return PytestRun(
        returncode=proc.returncode,
        wall=wall,
        t_spawn=t_spawn,
        maxrss_mb=(hwm_kb or usage.ru_maxrss) / 1024.0,
        rusage_maxrss_mb=usage.ru_maxrss / 1024.0,
        cpu=usage.ru_utime + usage.ru_stime,
        timing=timing,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


def _vm_hwm_kb(pid: int) -> int:
    """The process's peak resident set (VmHWM) in KB; 0 if it is gone or not on Linux."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def check(run: PytestRun, expect_passed: int | None = None) -> None:
    """Stop the benchmark with the child's output if the session did not go as planned."""
    passed = run.outcomes().get("passed", 0)
    if run.returncode != 0 or (expect_passed is not None and passed != expect_passed):
        sys.stderr.write(run.stdout[-4000:] + "\n" + run.stderr[-4000:] + "\n")
        raise SystemExit(
            f"benchmark session failed: exit {run.returncode}, outcomes {run.outcomes()}, "
            f"expected {expect_passed} passed"
        )


class TempDir:
    def __init__(self, prefix: str) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"cekura-bench-{prefix}-"))

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# ------------------------------------------------------------------------------ tables


@dataclass
class Row:
    case: str
    figure: str
    baseline: str
    ratio: str
    target: str
    met: bool | None  # None: informational


@dataclass
class Table:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self,
        case: str,
        figure: str,
        baseline: str = "-",
        ratio: str = "-",
        target: str = "-",
        met: bool | None = None,
    ) -> None:
        self.rows.append(Row(case, figure, baseline, ratio, target, met))
        # Progress on stderr, so long runs show life; the table goes to stdout at the end.
        print(f"  .. {case}: {figure} (baseline {baseline}, ratio {ratio})", file=sys.stderr)

    def render(self) -> str:
        head = ("case", "figure", "baseline", "ratio", "target", "met")
        body = [(r.case, r.figure, r.baseline, r.ratio, r.target, _met(r.met)) for r in self.rows]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]

        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        out = [f"### {self.title}", "", line(head), line(["-" * w for w in widths])]
        out += [line(row) for row in body]
        if self.notes:
            out.append("")
            out += [f"* {note}" for note in self.notes]
        return "\n".join(out)

    def print(self) -> None:
        print()
        print(self.render())
        print()
        sys.stdout.flush()


def _met(value: bool | None) -> str:
    return "info" if value is None else ("met" if value else "NOT MET")


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s"


def ratio(value: float, base: float) -> str:
    if base == 0:
        return "n/a"
    r = value / base
    return f"{r:.3g}x"


def header(name: str, quick: bool) -> None:
    load = os.getloadavg()
    print(
        f"# {name}{' (--quick)' if quick else ''}: {_revision()}, python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPU(s), load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    )
    sys.stdout.flush()


def _revision() -> str:
    """The commit measured (read-only git queries), and whether the plugin has local edits."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "pytest_cekura"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"
    return f"commit {commit}" + (" + local changes to pytest_cekura/" if dirty else "")


def ceil_div(a: float, b: float) -> int:
    return math.ceil(a / b)


def indent(text: str, prefix: str = "    ") -> str:
    return textwrap.indent(text, prefix)
