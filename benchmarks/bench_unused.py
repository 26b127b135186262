"""Target 4 - unused plugin: with pytest-cekura installed but no marked test, a 5,000-test
trivial suite runs at most 3 % slower than with ``-p no:cekura``.

A (plugin loaded, the default) and B (``-p no:cekura``: pytest does not even import it) run
the same suite, interleaved (A B C, then C B A, ...) after one discarded warm-up round; the
figure is the median wall time of the pytest subprocess (spawn to exit). A third, diagnostic
arm C runs ``-p no:cekura`` with a conftest that merely imports ``pytest_cekura.plugin``
(its modules and dependencies, but none of its hooks): if C costs what A costs, the overhead
is the imports, not the hooks. The timing conftest splits each
session into start-up (spawn to ``pytest_sessionstart``), collection, running (to
``pytest_unconfigure``) and exit (interpreter shutdown), to show where a difference comes from.
A last row measures the plugin's import time with ``python -X importtime``.

    .venv/bin/python benchmarks/bench_unused.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys

from _common import ROOT, PytestRun, Table, TempDir, header, run_pytest, write_plain_suite

WITH = "plugin loaded"
WITHOUT = "-p no:cekura"
IMPORT_ONLY = "-p no:cekura + import"
ARGS = {WITH: [], WITHOUT: ["-p", "no:cekura"], IMPORT_ONLY: ["-p", "no:cekura"]}
ENV = {WITH: {}, WITHOUT: {}, IMPORT_ONLY: {"BENCH_IMPORT_PLUGIN": "1"}}
IMPORT_PROBE = """
if os.environ.get("BENCH_IMPORT_PLUGIN"):
    import pytest_cekura.plugin  # noqa: F401  (modules only: not registered as a plugin)
"""


def phases(run: PytestRun) -> dict[str, float]:
    t = run.timing
    return {
        "start-up": t["sessionstart"] - run.t_spawn,
        "collection": t["collected"] - t["sessionstart"],
        "running": t["end"] - t["collected"],
        "exit": run.t_spawn + run.wall - t["end"],
        "in-process": t["end"] - t["sessionstart"],
    }


IMPORTS = (
    "pytest_cekura.plugin",
    "pytest_cekura.client",
    "httpx",
    "pytest_cekura.models",
    "pydantic",
    "pytest_cekura.gates",
)


def import_times(repeats: int) -> dict[str, float]:
    """Median cumulative import time (s) of the plugin and of some of the modules it pulls in
    (``client`` imports httpx and ``models``; ``models`` builds its pydantic models), in a
    process that has already imported pytest (as pytest does before loading plugins)."""
    found: dict[str, list[float]] = {}
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import pytest, pytest_cekura.plugin"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            check=True,
        ).stderr
        for line in out.splitlines():
            match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)", line)
            if match and match.group(3) in IMPORTS:
                found.setdefault(match.group(3), []).append(int(match.group(1)) / 1e6)
    return {name: statistics.median(values) for name, values in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 tests, 3 rounds")
    parser.add_argument("--tests", type=int, default=None, help="suite size (default 5000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 7)")
    args = parser.parse_args()
    n_tests = args.tests or (1000 if args.quick else 5000)
    rounds = args.rounds or (3 if args.quick else 7)
    header("bench_unused", args.quick)
    samples: dict[str, list[PytestRun]] = {WITH: [], WITHOUT: [], IMPORT_ONLY: []}
    with TempDir("unused") as tmp:
        write_plain_suite(tmp, n_tests)
        conftest = tmp / "conftest.py"
        conftest.write_text(conftest.read_text() + IMPORT_PROBE)
        arms = (WITH, WITHOUT, IMPORT_ONLY)
        for variant in arms:  # warm-up: page cache, bytecode; discarded
            run_pytest(tmp, None, args=ARGS[variant], env=ENV[variant])
        for i in range(rounds):
            order = arms if i % 2 == 0 else arms[::-1]
            for variant in order:
                run = run_pytest(tmp, None, args=ARGS[variant], env=ENV[variant])
                if run.returncode != 0 or run.outcomes().get("passed") != n_tests:
                    raise SystemExit(f"{variant}: session failed:\n{run.stdout[-2000:]}")
                samples[variant].append(run)
                print(f"  .. round {i + 1} {variant}: {run.wall:.3f} s", file=sys.stderr)

    def med(variant: str, key: str | None = None) -> float:
        runs = samples[variant]
        values = [r.wall for r in runs] if key is None else [phases(r)[key] for r in runs]
        return statistics.median(values)

    table = Table(f"Unused plugin: {n_tests}-test trivial suite (target 4)")
    a, b = med(WITH), med(WITHOUT)
    spread_a = max(r.wall for r in samples[WITH]) - min(r.wall for r in samples[WITH])
    spread_b = max(r.wall for r in samples[WITHOUT]) - min(r.wall for r in samples[WITHOUT])
    table.add(
        f"{n_tests} tests, wall time (median of {rounds})",
        f"{a:.3f} s (range {spread_a:.2f} s)",
        f"{b:.3f} s with {WITHOUT} (range {spread_b:.2f} s)",
        f"{a / b:.3f} ({(a / b - 1) * 100:+.1f} %)",
        "<= 1.03",
        a / b <= 1.03,
    )
    for key in ("start-up", "collection", "running", "exit", "in-process"):
        pa, pb = med(WITH, key), med(WITHOUT, key)
        table.add(
            f"  {key} phase (median)",
            f"{pa:.3f} s",
            f"{pb:.3f} s",
            f"{pa / pb:.3f} ({(pa - pb) * 1000:+.0f} ms)",
            "-",
        )
    c = med(IMPORT_ONLY)
    table.add(
        "  diagnostic: -p no:cekura, conftest imports the plugin module",
        f"{c:.3f} s",
        f"{b:.3f} s with {WITHOUT}",
        f"{c / b:.3f} ({(c / b - 1) * 100:+.1f} %)",
        "-",
    )
    rss_a = statistics.median(r.maxrss_mb for r in samples[WITH])
    rss_b = statistics.median(r.maxrss_mb for r in samples[WITHOUT])
    table.add(
        "  peak RSS (median)",
        f"{rss_a:.1f} MB",
        f"{rss_b:.1f} MB",
        f"{rss_a / rss_b:.3f} ({rss_a - rss_b:+.1f} MB)",
        "-",
    )
    imports = import_times(5)
    table.add(
        "import pytest_cekura.plugin (after pytest; median of 5)",
        f"{imports.get('pytest_cekura.plugin', 0) * 1000:.0f} ms",
        "incl. "
        + ", ".join(f"{name} {imports.get(name, 0) * 1000:.0f} ms" for name in IMPORTS[1:]),
        "-",
        "-",
    )
    table.notes.append(
        "figure = plugin loaded (installed, no test uses it); baseline = the same suite with "
        "-p no:cekura; ratio = figure / baseline. Phases: start-up = spawn to "
        "pytest_sessionstart (interpreter, pytest and plugin imports), collection, running = "
        "collection end to pytest_unconfigure, exit = interpreter shutdown; in-process = "
        "collection + running."
    )
    table.print()


if __name__ == "__main__":
    main()
