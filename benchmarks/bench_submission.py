"""Target 1 - submission: run-starting POSTs = number of distinct submission groups.

Each case writes a suite, runs it against a fresh emulator and counts the run-starting POSTs
and the runs the emulator created. The baseline is a plugin that POSTs once per test (the
naive way): its POST count is the number of tests, so the ratio column shows how many
requests grouping saves. Runs are short (time scale 0.001) because only requests are counted.

    .venv/bin/python benchmarks/bench_submission.py [--quick]
"""

from __future__ import annotations

import argparse

from _common import (
    Table,
    TempDir,
    TestSpec,
    TimedEmulator,
    check,
    header,
    ratio,
    run_pytest,
    spread_durations,
    write_suite,
)

TIME_SCALE = 0.001  # 300 emulated seconds = 0.3 s
POLL = 0.05
FIRST_ID = 1000


def scenarios(n: int) -> dict[int, tuple[str, float]]:
    return {FIRST_ID + i: ("pass", d) for i, d in enumerate(spread_durations(n))}


def cases(quick: bool) -> list[tuple[str, int, list[TestSpec], int, int]]:
    """(case, n scenarios, tests, expected POSTs, expected runs)."""
    ids = [FIRST_ID + i for i in range(100)]
    out: list[tuple[str, int, list[TestSpec], int, int]] = []
    out.append(
        (
            "100 scenarios, 100 tests, frequency 1",
            100,
            [TestSpec(f"test_s{s}", [s]) for s in ids],
            1,
            100,
        )
    )
    out.append(
        (
            "100 scenarios, 100 tests, frequency 3",
            100,
            [TestSpec(f"test_s{s}", [s], frequency=3) for s in ids],
            1,
            300,
        )
    )
    shared = [
        TestSpec(f"test_pair{i}", [ids[i % 100], ids[(i + 1) % 100]], frequency=2)
        for i in range(200)
    ]
    out.append(("100 scenarios shared by 200 tests (2 each), frequency 2", 100, shared, 1, 200))
    two = [TestSpec(f"test_s{s}", [s], frequency=1 if i < 50 else 2) for i, s in enumerate(ids)]
    out.append(("100 scenarios, 2 frequencies (50 x1, 50 x2)", 100, two, 2, 150))
    four = []
    for i, s in enumerate(ids):
        freq = 1 + (i % 2)
        profile = ", test_profile=7" if (i // 2) % 2 else ""
        four.append(TestSpec(f"test_s{s}", [s], frequency=freq, extra=profile))
    out.append(("100 scenarios, 4 shapes (frequency 1/2 x profile none/7)", 100, four, 4, 150))
    both = [TestSpec("test_once", [ids[0]]), TestSpec("test_twice", [ids[0]], frequency=2)]
    out.append(("1 scenario in 2 shapes (x1 and x2)", 1, both, 2, 3))
    if not quick:
        many = [TestSpec(f"test_s{FIRST_ID + i}", [FIRST_ID + i]) for i in range(1000)]
        out.append(("1,000 scenarios, 1,000 tests, frequency 1", 1000, many, 1, 1000))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1,000-scenario case")
    args = parser.parse_args()
    header("bench_submission", args.quick)
    table = Table("Submission: run-starting POSTs per session (target 1)")
    for name, n_scen, tests, want_posts, want_runs in cases(args.quick):
        with TempDir("submit") as tmp, TimedEmulator(scenarios(n_scen), TIME_SCALE, tmp) as emu:
            write_suite(tmp, tests)
            run = run_pytest(tmp, emu.url, poll_interval=POLL)
            check(run, expect_passed=len(tests))
            posts = emu.posts()
            runs = len(emu.emulator.runs)
            post_time = sum(h.t_out - h.t_in for h in posts)
            table.add(
                name,
                f"{len(posts)} POST(s), {runs} runs ({post_time * 1000:.0f} ms in POSTs)",
                f"{len(tests)} POSTs (1 per test)",
                ratio(len(posts), len(tests)),
                f"{want_posts} POST(s), {want_runs} runs",
                len(posts) == want_posts and runs == want_runs,
            )
    table.notes.append(
        "figure: POSTs the emulator received and runs it created; baseline: a plugin that "
        "POSTs once per test; ratio = POSTs / baseline POSTs."
    )
    table.notes.append(
        "a shape is (provider, agent, frequency, test profile, personality, extra fields); "
        "tests of one shape share one POST, and a scenario wanted by several of its tests is "
        "requested once, so its runs are shared."
    )
    table.print()


if __name__ == "__main__":
    main()
