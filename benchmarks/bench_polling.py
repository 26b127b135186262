"""Target 2 - polling: bulk GETs <= ceil(longest run / interval) * ceil(outstanding / 50) + 2,
whatever the number of tests sharing those runs.

For each number of runs, the same runs are requested by suites of very different shapes (one
test per scenario, one test for all of them, many tests sharing every scenario); the
"List Runs with IDs" GETs (``runs/bulk/``) are counted from the emulator's log. Preflight GETs
(``scenarios/<id>/``, ``aiagents/<id>/``) are counted separately: they are made once per
distinct scenario and agent before anything is started.

    .venv/bin/python benchmarks/bench_polling.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import statistics

from _common import (
    Table,
    TempDir,
    TestSpec,
    TimedEmulator,
    check,
    header,
    run_pytest,
    spread_durations,
    write_suite,
)

TIME_SCALE = 0.01  # 60-300 emulated s -> 0.6-3 s
POLL = 0.25
CHUNK = 50
FIRST_ID = 1000


def shapes(n_scen: int, freq: int) -> list[tuple[str, list[TestSpec]]]:
    ids = [FIRST_ID + i for i in range(n_scen)]
    one_each = [TestSpec(f"test_s{s}", [s], frequency=freq) for s in ids]
    one_test = [TestSpec("test_all", ids, frequency=freq)]
    sharing = 10
    everyone = [TestSpec(f"test_all_{k}", ids, frequency=freq) for k in range(sharing)]
    doubled = [TestSpec(f"test_s{s}_{k}", [s], frequency=freq) for s in ids for k in range(2)]
    return [
        (f"{n_scen} tests, 1 scenario each", one_each),
        ("1 test, all scenarios", one_test),
        (f"{sharing} tests, each all scenarios", everyone),
        (f"{2 * n_scen} tests, every scenario in 2", doubled),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 runs only")
    args = parser.parse_args()
    header("bench_polling", args.quick)
    sizes = [(100, 1)] if args.quick else [(100, 1), (200, 5)]
    table = Table("Polling: runs/bulk GETs per session (target 2)")
    for n_scen, freq in sizes:
        durations = spread_durations(n_scen)
        catalogue = {FIRST_ID + i: ("pass", d) for i, d in enumerate(durations)}
        longest = max(durations) * TIME_SCALE
        runs = n_scen * freq
        bound = math.ceil(longest / POLL) * math.ceil(runs / CHUNK) + 2
        counts: list[int] = []
        for label, tests in shapes(n_scen, freq):
            with TempDir("poll") as tmp, TimedEmulator(catalogue, TIME_SCALE, tmp) as emu:
                write_suite(tmp, tests)
                run = run_pytest(tmp, emu.url, poll_interval=POLL)
                check(run, expect_passed=len(tests))
                gets = len(emu.bulk_gets())
                preflight = len(emu.preflight_gets())
                cycles = emu.poll_cycles(POLL)
                counts.append(gets)
                table.add(
                    f"{runs} runs ({n_scen} scen. x{freq}), {label}",
                    f"{gets} bulk GETs in {len(cycles)} cycles (+{preflight} preflight GETs)",
                    f"bound {bound}",
                    f"{gets / bound:.2f}",
                    f"<= {bound}",
                    gets <= bound,
                )
        # Worst case for the bound: every run lasts the longest, so no chunk drops out early.
        uniform = {sid: ("pass", max(durations)) for sid in catalogue}
        with TempDir("poll") as tmp, TimedEmulator(uniform, TIME_SCALE, tmp) as emu:
            tests = shapes(n_scen, freq)[0][1]
            write_suite(tmp, tests)
            run = run_pytest(tmp, emu.url, poll_interval=POLL)
            check(run, expect_passed=len(tests))
            gets = len(emu.bulk_gets())
            table.add(
                f"{runs} runs, every run {max(durations) * TIME_SCALE:g} s (worst case)",
                f"{gets} bulk GETs in {len(emu.poll_cycles(POLL))} cycles",
                f"bound {bound}",
                f"{gets / bound:.2f}",
                f"<= {bound}",
                gets <= bound,
            )
        spread = max(counts) - min(counts)
        per_cycle = math.ceil(runs / CHUNK)
        table.add(
            f"{runs} runs: independence from the number of tests",
            f"bulk GETs {min(counts)}-{max(counts)} (median {statistics.median(counts):g})",
            f"1 cycle = {per_cycle} GET(s)",
            f"{max(counts) / min(counts):.2f} (max/min)",
            "spread <= 2 poll cycles",
            spread <= 2 * per_cycle,
        )
    table.notes.append(
        f"runs last 60-300 emulated s at time scale {TIME_SCALE} (longest {300 * TIME_SCALE:g} s), "
        f"--cekura-poll-interval={POLL}, {CHUNK} ids per bulk GET; bound = "
        "ceil(longest / interval) * ceil(runs / 50) + 2; ratio = GETs / bound."
    )
    table.notes.append(
        "the number of poll cycles varies by one or two between sessions: the interval is up "
        "to 10 % shorter at random and counted from the end of one cycle to the start of the "
        "next, so a slower cycle (a busier machine) means fewer cycles, not more."
    )
    table.print()


if __name__ == "__main__":
    main()
