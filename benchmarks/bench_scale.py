"""Target 5 - scale: 10,000 runs in one session (2,000 scenarios x frequency 5): peak RSS of
the pytest process <= 150 MB, total time dominated by the runs, no quadratic step.

Sessions of 1,000 runs (200 scenarios x 5) and 10,000 runs (2,000 x 5), one test per
scenario, with runs of 60-300 emulated seconds at time scale 0.05 (the longest takes 15 s) and
a 0.25 s poll interval: the same interval-to-run ratio as Cekura's default 5 s interval with
5-minute calls. Peak RSS is the pytest process's own high-water mark (``VmHWM``, see
``_common.run_pytest``); CPU time comes from ``os.wait4``'s rusage for that process alone.

Baselines, measured in the same run: the same number of tests *without* a marker under
``-p no:cekura`` (what pytest itself needs for that many tests), and the physical limit (the
longest run). Per-run overhead = (session wall - longest run - baseline wall) / runs; its
10k/1k ratio is about 1 for linear costs and about 10 for a quadratic step.

The last rows repeat both sessions at pytest's default verbosity (without ``-q``), where the
plugin's live progress line is on; a small wrapper in the generated conftest counts the
calls to ``Poller._counts`` (the progress tally) and the time spent in them.

    .venv/bin/python benchmarks/bench_scale.py [--quick]
"""

from __future__ import annotations

import argparse

from _common import (
    PytestRun,
    Table,
    TempDir,
    TestSpec,
    TimedEmulator,
    check,
    fmt_s,
    header,
    run_pytest,
    spread_durations,
    write_plain_suite,
    write_suite,
)

from pytest_cekura.poller import POLL_CONCURRENCY

POLL = 0.25
FREQ = 5
FIRST_ID = 1000
LATENCY = 0.05
RSS_TARGET_MB = 150.0

#: Appended to the generated conftest for the progress rows: count Poller._counts calls.
COUNTS_PROBE = """
from pytest_cekura import poller as _bench_poller

_bench_counts = _bench_poller.Poller._counts


def _bench_counting(self):
    started = time.perf_counter()
    try:
        return _bench_counts(self)
    finally:
        calls, spent = _T.get("counts", (0, 0.0))
        _T["counts"] = (calls + 1, spent + time.perf_counter() - started)


_bench_poller.Poller._counts = _bench_counting
"""


#: Appended to the generated conftest for the diagnostic row: gc.freeze() once pytest is done.
FREEZE_PROBE = """
_bench_unconfigure = pytest_unconfigure


def pytest_unconfigure(config):
    _bench_unconfigure(config)
    import gc

    gc.freeze()  # later full collections (at interpreter exit) skip every object so far
"""


def cekura_session(
    n_scen: int,
    time_scale: float,
    *,
    quiet: bool = True,
    latency: float = 0.0,
    probe: str = "",
) -> dict[str, float]:
    durations = spread_durations(n_scen)
    scen = {FIRST_ID + i: ("pass", d) for i, d in enumerate(durations)}
    with TempDir("scale") as tmp, TimedEmulator(scen, time_scale, tmp, latency=latency) as emu:
        tests = [TestSpec(f"test_s{s}", [s], frequency=FREQ) for s in scen]
        write_suite(tmp, tests, conftest_extra=probe)
        run = run_pytest(tmp, emu.url, poll_interval=POLL, args=[] if quiet else ["-v"])
        check(run, expect_passed=n_scen)
        first_post = emu.first_post()
        posts = emu.posts()
        first_request = min(h.t_in for h in emu.hits)
        counts = run.timing.get("counts", (0, 0.0))
        # The first poll cycle asks for every run (its GETs, however many, come first).
        cycle = emu.poll_cycles(POLL)[0]
        first_cycle = max(h.t_out for h in cycle) - min(h.t_in for h in cycle)
        first_cycle_gets = len(cycle)
        return {
            "runs": n_scen * FREQ,
            "rss": run.maxrss_mb,
            "wall": run.wall,
            "cpu": run.cpu,
            "longest": max(durations) * time_scale,
            "to_first_request": first_request - run.t_spawn,
            "preflight": first_post - first_request,
            "post": max(h.t_out for h in posts) - first_post,
            "polling": run.last_outcome() - first_post,
            "teardown": run.t_spawn + run.wall - run.last_outcome(),
            "exit": run.t_spawn + run.wall - run.timing["end"],
            "cycle": first_cycle,
            "cycle_gets": first_cycle_gets,
            "gets": len(emu.bulk_gets()),
            "counts_calls": counts[0],
            "counts_time": counts[1],
        }


def plain_session(n_tests: int) -> PytestRun:
    with TempDir("scale-base") as tmp:
        write_plain_suite(tmp, n_tests)
        run = run_pytest(tmp, None, args=["-p", "no:cekura"])
        if run.returncode != 0:
            raise SystemExit(run.stdout[-2000:])
        return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 runs, scale 0.01")
    args = parser.parse_args()
    header("bench_scale", args.quick)
    time_scale = 0.01 if args.quick else 0.05
    small, large = (20, 200) if args.quick else (200, 2000)
    table = Table(f"Scale: {small * FREQ} and {large * FREQ} runs in one session (target 5)")

    measured: dict[int, dict[str, float]] = {}
    base: dict[int, PytestRun] = {}
    for n_scen in (small, large):
        base[n_scen] = plain_session(n_scen)
        measured[n_scen] = cekura_session(n_scen, time_scale)

    overhead: dict[int, float] = {}
    cpu_overhead: dict[int, float] = {}
    for n_scen in (small, large):
        m, b = measured[n_scen], base[n_scen]
        runs = int(m["runs"])
        is_target = n_scen == large
        table.add(
            f"{runs} runs: peak RSS of pytest",
            f"{m['rss']:.1f} MB",
            f"{b.maxrss_mb:.1f} MB ({n_scen} unmarked tests, -p no:cekura)",
            f"{m['rss'] / b.maxrss_mb:.2f}x",
            f"<= {RSS_TARGET_MB:.0f} MB" if is_target else "-",
            m["rss"] <= RSS_TARGET_MB if is_target else None,
        )
        share = m["longest"] / m["wall"]
        table.add(
            f"{runs} runs: session wall time",
            fmt_s(m["wall"]),
            f"physical limit {fmt_s(m['longest'])}",
            f"runs = {share * 100:.0f} % of wall",
            "runs > 50 % of wall" if is_target else "-",
            share > 0.5 if is_target else None,
        )
        table.add(
            f"{runs} runs: phases",
            f"start {m['to_first_request']:.2f} + preflight {m['preflight']:.2f} + POST "
            f"{m['post']:.2f}; first POST to last outcome {m['polling']:.2f}; "
            f"last outcome to exit {m['teardown']:.2f} (interpreter exit {m['exit']:.2f}) s",
            f"longest run {fmt_s(m['longest'])}",
            f"{m['polling'] / m['longest']:.2f}x",
            "-",
        )
        overhead[n_scen] = (m["wall"] - m["longest"] - b.wall) / m["runs"]
        cpu_overhead[n_scen] = (m["cpu"] - b.cpu) / m["runs"]
        table.add(
            f"{runs} runs: overhead per run",
            f"{overhead[n_scen] * 1000:.2f} ms wall, {cpu_overhead[n_scen] * 1000:.2f} ms CPU",
            f"baseline wall {fmt_s(b.wall)}, CPU {b.cpu:.2f} s",
            "-",
            "-",
            None,
        )
    s, lg = measured[small], measured[large]
    growth = overhead[large] / overhead[small]
    table.add(
        f"per-run overhead, {large * FREQ} vs {small * FREQ} runs",
        f"{growth:.2f} (wall)",
        "1.0 = linear",
        f"{cpu_overhead[large] / cpu_overhead[small]:.2f} (CPU)",
        "<= 2 (quadratic ~ 10)",
        growth <= 2,
    )
    table.add(
        f"memory per run, {small * FREQ} -> {large * FREQ} runs",
        f"{(lg['rss'] - s['rss']) * 1024 / (lg['runs'] - s['runs']):.1f} KB/run",
        "-",
        "-",
        "-",
    )

    # Default verbosity: the live progress line is on.
    loud: dict[int, dict[str, float]] = {}
    for n_scen in (small, large):
        loud[n_scen] = v = cekura_session(n_scen, time_scale, quiet=False, probe=COUNTS_PROBE)
        q = measured[n_scen]
        table.add(
            f"{int(v['runs'])} runs, default verbosity (progress on)",
            f"CPU {v['cpu']:.1f} s, {v['gets']:.0f} bulk GETs, last outcome "
            f"{fmt_s(v['polling'])} after POST; Poller._counts: {v['counts_calls']:.0f} calls, "
            f"{v['counts_time']:.2f} s",
            f"-q: CPU {q['cpu']:.1f} s, {q['gets']:.0f} bulk GETs, {fmt_s(q['polling'])}",
            f"{v['cpu'] / q['cpu']:.2f}x CPU",
            "-",
        )
    per_call = [loud[n]["counts_time"] / max(loud[n]["counts_calls"], 1) for n in (small, large)]
    table.add(
        "Poller._counts cost per call (progress on)",
        f"{per_call[1] * 1000:.2f} ms at {large * FREQ} runs",
        f"{per_call[0] * 1000:.2f} ms at {small * FREQ} runs",
        f"{per_call[1] / per_call[0]:.1f}x",
        "-",
    )
    frozen = cekura_session(large, time_scale, probe=FREEZE_PROBE)
    table.add(
        f"{large * FREQ} runs, gc.freeze() in pytest_unconfigure (diagnostic)",
        f"interpreter exit {fmt_s(frozen['exit'])}, peak RSS {frozen['rss']:.0f} MB",
        f"without: {fmt_s(lg['exit'])}",
        f"{frozen['exit'] / lg['exit']:.3f}",
        "-",
    )
    if not args.quick:
        slow = cekura_session(large, time_scale, latency=LATENCY)
        table.add(
            f"{large * FREQ} runs, +{LATENCY * 1000:.0f} ms per request (emulated round trip)",
            f"preflight {fmt_s(slow['preflight'])}; first poll cycle {fmt_s(slow['cycle'])} "
            f"({slow['cycle_gets']:.0f} GETs, {POLL_CONCURRENCY} at a time); first POST to last "
            f"outcome {fmt_s(slow['polling'])}; session {fmt_s(slow['wall'])}",
            f"no latency: preflight {fmt_s(lg['preflight'])}, cycle {fmt_s(lg['cycle'])}, "
            f"{fmt_s(lg['polling'])}",
            f"{slow['polling'] / slow['longest']:.2f}x physical limit",
            "-",
        )
    table.notes.append(
        f"time scale {time_scale}: runs of 60-300 emulated s take "
        f"{60 * time_scale:g}-{300 * time_scale:g} s; --cekura-poll-interval={POLL}; "
        f"frequency {FREQ}; one test per scenario; -q unless stated."
    )
    table.notes.append(
        "overhead per run = (session wall - longest run - baseline wall) / runs, and CPU "
        "(session CPU - baseline CPU) / runs, where the baseline is pytest alone running the "
        "same number of unmarked tests."
    )
    table.print()


if __name__ == "__main__":
    main()
