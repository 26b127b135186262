"""Target 6 - early reporting: a test whose runs end first reports first; a 1 s scenario among
60 s scenarios finishes its test within 1 s + one poll interval.

One session, tests in this collection order:

1. ``test_a_short_first``: one scenario of 1 emulated second;
2. ``test_b_staggered_<k>``: 8 scenarios lasting 1 s + k/8 of a poll interval (k = 1..8), to
   sample the delay between a run's end and its test's report at 8 phases of the poll cycle;
3. ``test_long_<i>``: 20 tests, one scenario of 60 emulated seconds each;
4. ``test_z_short_last``: another 1-second scenario, collected after the long ones.

At the default time scale 1.0 emulated seconds are real seconds (so the session lasts about a
minute), with a 0.5 s poll interval; ``--quick`` uses time scale 0.1 (0.1 s among 6 s) and a
0.1 s interval. Each test's finish time is recorded in ``pytest_runtest_logreport`` by the timing
conftest and measured from the first POST's arrival at the emulator (same monotonic clock).

pytest runs tests one after another in collection order, and a test is reported when it has
run. So only a short test collected *before* the long ones can report early; the one collected
last is reported after them, although its run ended just as early. That row is informational.

    .venv/bin/python benchmarks/bench_early.py [--quick]
"""

from __future__ import annotations

import argparse

from _common import (
    Table,
    TempDir,
    TestSpec,
    TimedEmulator,
    check,
    fmt_s,
    header,
    run_pytest,
    write_suite,
)

SHORT_S = 1.0
LONG_S = 60.0
N_LONG = 20
SHORT_FIRST, SHORT_LAST = 1, 2
FIRST_LONG = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="time scale 0.1 (a 6 s session)")
    args = parser.parse_args()
    header("bench_early", args.quick)
    time_scale = 0.1 if args.quick else 1.0
    interval = 0.1 if args.quick else 0.5
    short, long_ = SHORT_S * time_scale, LONG_S * time_scale
    step = interval / time_scale / 8  # emulated seconds
    staggered = {10 + k: SHORT_S + step * k for k in range(1, 9)}

    scen: dict[int, tuple[str, float]] = {
        SHORT_FIRST: ("pass", SHORT_S),
        SHORT_LAST: ("pass", SHORT_S),
    }
    longs = [FIRST_LONG + i for i in range(N_LONG)]
    scen.update({s: ("pass", LONG_S) for s in longs})
    scen.update({s: ("pass", d) for s, d in staggered.items()})
    tests = [TestSpec("test_a_short_first", [SHORT_FIRST])]
    tests += [TestSpec(f"test_b_staggered_{s}", [s]) for s in staggered]
    tests += [TestSpec(f"test_long_{s}", [s]) for s in longs]
    tests += [TestSpec("test_z_short_last", [SHORT_LAST])]

    def session(*args: str) -> dict[str, float]:
        """Each test's finish time, from the first POST's arrival at the emulator."""
        with TempDir("early") as tmp, TimedEmulator(scen, time_scale, tmp) as emu:
            write_suite(tmp, tests)
            run = run_pytest(tmp, emu.url, poll_interval=interval, args=args)
            check(run, expect_passed=len(tests))
            t0 = emu.first_post()
            return {nodeid.split("::")[-1]: t - t0 for nodeid, _, t in run.finish_times}

    finish = session()
    first_reported = min(finish, key=lambda name: finish[name])
    by_finish = session("--cekura-order=finish")

    table = Table(
        f"Early reporting: a {short:g} s scenario among {N_LONG} of {long_:g} s (target 6)"
    )
    f_first = finish["test_a_short_first"]
    limit = short + interval
    table.add(
        "short test collected first: finished after",
        fmt_s(f_first),
        f"all runs done {fmt_s(long_)}",
        f"{f_first / long_:.3f}",
        f"<= {short:g} s + {interval:g} s = {fmt_s(limit)}",
        f_first <= limit,
    )
    table.add(
        "  of which waiting for the poll (finish - run end)",
        fmt_s(f_first - short),
        f"interval {interval:g} s (up to 10 % shorter)",
        f"{(f_first - short) / interval:.2f} intervals",
        "-",
    )
    delays = sorted(finish[f"test_b_staggered_{s}"] - d * time_scale for s, d in staggered.items())
    table.add(
        f"{len(delays)} staggered short tests: run end to report",
        f"median {fmt_s(delays[len(delays) // 2])}, max {fmt_s(delays[-1])}",
        f"interval {interval:g} s",
        f"{delays[-1] / interval:.2f} intervals (max)",
        f"each <= {interval:g} s",
        delays[-1] <= interval,
    )
    table.add(
        "first test reported",
        first_reported,
        "-",
        "-",
        "test_a_short_first",
        first_reported == "test_a_short_first",
    )
    long_times = [finish[f"test_long_{s}"] for s in longs]
    table.add(
        f"{N_LONG} long tests: finished after",
        f"{fmt_s(min(long_times))} - {fmt_s(max(long_times))}",
        f"run end {fmt_s(long_)}",
        f"{max(long_times) / long_:.3f}",
        f"(run end + interval = {fmt_s(long_ + interval)})",
        None,
    )
    f_last = finish["test_z_short_last"]
    table.add(
        "short test collected last: finished after",
        fmt_s(f_last),
        f"its run ended at {fmt_s(short)}",
        f"{f_last / short:.0f}x",
        "(collection order: after the long tests)",
        None,
    )
    f_last = by_finish["test_z_short_last"]
    table.add(
        "--cekura-order=finish: short test collected last, finished after",
        fmt_s(f_last),
        f"collection order: {fmt_s(finish['test_z_short_last'])}",
        f"{f_last / finish['test_z_short_last']:.3f}",
        f"<= {fmt_s(limit)}",
        f_last <= limit,
    )
    first_long = min(by_finish[f"test_long_{s}"] for s in longs)
    table.add(
        "--cekura-order=finish: short test collected last vs the long tests",
        f"reported {fmt_s(first_long - f_last)} before the first of them",
        f"first long test: {fmt_s(first_long)}",
        "-",
        "reported before every long test",
        f_last < first_long,
    )
    table.notes.append(
        f"time scale {time_scale}, --cekura-poll-interval={interval:g}; times from the first "
        "POST's arrival at the emulator to each test's report (pytest_runtest_logreport); "
        "baseline = when the last run of the session ends (what a plugin that waits for all "
        "runs before reporting any would give); ratio = figure / baseline."
    )
    table.notes.append(
        "pytest runs tests in collection order, so a short test collected after long ones "
        "cannot report before them; --cekura-order=finish runs each test as its runs end (the "
        "last two rows, from a second session)."
    )
    table.print()


if __name__ == "__main__":
    main()
