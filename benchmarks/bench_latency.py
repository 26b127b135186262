"""Issue #20 - performance at real latency: preflight, one poll cycle and first POST to last
outcome, at 0, 50 and 150 ms per request, for 100, 1,000 and 10,000 runs, against the
pre-change plugin measured in the same run.

Sessions: 100 runs (100 scenarios x1), 1,000 runs (1,000 x1) and 10,000 runs (2,000 x5), one
test per scenario, runs of 60-300 emulated s at time scale 0.05 (the longest takes 15 s),
poll interval 0.25 s. The emulator adds the latency to every request before answering it
(``TimedEmulator(latency=...)``; requests on separate connections overlap, as on a network).

Each configuration runs twice: the plugin as it is, and the pre-change strategy, selected by
the generated conftest through two private switches used only here
(``preflight._ONE_BY_ONE``: one GET per scenario; ``poller._SMALL_CHUNKS``: bulk GETs of
50 ids, four in flight). Everything else (the client, the session) is the same code.

Figures:

* preflight: first request to first run-starting POST (scenario and agent look-ups);
* one poll cycle: the first ``Poller.poll_once`` after the POST (every run outstanding),
  timed in the pytest process by a wrapper in the conftest; its bulk GETs are counted in
  the emulator's log between the cycle's start and end;
* first POST to last outcome: the first POST's arrival to the last test's report; at 10,000
  runs and 50 ms also with ``--cekura-order=finish`` (a third session, plugin as it is).

Physical limits: one round trip for preflight and for a poll cycle (nothing can be known
sooner), the longest run for first POST to last outcome. Each configuration runs once: the
machine is a busy 2-core box, and 19 sessions already take about 13 minutes.

    .venv/bin/python benchmarks/bench_latency.py [--quick | --target-only]
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from _common import (
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

POLL = 0.25
FIRST_ID = 1000
#: The emulator's (and DRF's usual) page cap: the page size in the GET bound.
PAGE = 100
PREFLIGHT_TARGET = 0.5
CYCLE_TARGET = 0.5

#: Appended to the generated conftest: time every poll cycle in the pytest process.
CYCLE_PROBE = """
from pytest_cekura import poller as _bench_poller

_bench_poll_once = _bench_poller.Poller.poll_once


def _bench_timed_poll(self):
    outstanding = len(self.outstanding())
    started = time.monotonic()
    try:
        return _bench_poll_once(self)
    finally:
        _T.setdefault("cycles", []).append([started, time.monotonic(), outstanding])


_bench_poller.Poller.poll_once = _bench_timed_poll
"""

#: Appended for the "before" arm: the strategies before issue #20.
BEFORE_PROBE = """
from pytest_cekura import preflight as _bench_preflight

_bench_preflight._ONE_BY_ONE = True
_bench_poller._SMALL_CHUNKS = True
"""


@dataclass(frozen=True)
class Measured:
    runs: int
    preflight: float
    preflight_gets: int
    cycle: float
    cycle_gets: int
    cycle_runs: int
    to_last: float
    longest: float
    wall: float
    rss: float
    #: Tests reported after the longest call ended.
    behind: int = 0


def session(
    n_scen: int, freq: int, time_scale: float, latency: float, before: bool, order: str = ""
) -> Measured:
    """One session; ``order="finish"`` runs it with ``--cekura-order=finish``."""
    durations = spread_durations(n_scen)
    scen = {FIRST_ID + i: ("pass", d) for i, d in enumerate(durations)}
    with TempDir("latency") as tmp, TimedEmulator(scen, time_scale, tmp, latency=latency) as emu:
        tests = [TestSpec(f"test_s{s}", [s], frequency=freq) for s in scen]
        probe = CYCLE_PROBE + (BEFORE_PROBE if before else "")
        write_suite(tmp, tests, conftest_extra=probe)
        args = [f"--cekura-order={order}"] if order else []
        run = run_pytest(tmp, emu.url, poll_interval=POLL, args=args)
        check(run, expect_passed=n_scen)
        first_post = emu.first_post()
        first_request = min(h.t_in for h in emu.hits)
        preflight_gets = [h for h in emu.preflight_gets() if h.t_in < first_post]
        start, end, outstanding = next(c for c in run.timing["cycles"] if c[2] > 0)
        cycle_gets = [h for h in emu.bulk_gets() if start <= h.t_in <= end]
        return Measured(
            runs=n_scen * freq,
            preflight=first_post - first_request,
            preflight_gets=len(preflight_gets),
            cycle=end - start,
            cycle_gets=len(cycle_gets),
            cycle_runs=int(outstanding),
            to_last=run.last_outcome() - first_post,
            longest=max(durations) * time_scale,
            wall=run.wall,
            rss=run.maxrss_mb,
            behind=sum(
                1 for _, _, t in run.finish_times if t > first_post + max(durations) * time_scale
            ),
        )


def pytest_alone(n_tests: int) -> float:
    """pytest without the plugin (``-p no:cekura``) reporting ``n_tests`` trivial tests back to
    back: seconds from the first report to the last. No plugin reports a test faster than
    pytest runs it, so in collection order, where the tests collected behind the longest
    call are reported once it ends, about this much comes on top of the longest call."""
    with TempDir("alone") as tmp:
        write_plain_suite(tmp, n_tests)
        run = run_pytest(tmp, None, args=["-p", "no:cekura"])
        check(run, expect_passed=n_tests)
        times = sorted(t for _, _, t in run.finish_times)
        return times[-1] - times[0]


NON_TERMINAL = "pending,in_queue,scaling_up,running,in_progress,evaluating"


def fetch_strategies(n_runs: int, latency: float) -> dict[str, tuple[float, int]]:
    """One cycle over ``n_runs`` unfinished runs, fetched with the plugin's client from this
    process, three ways: the run list filtered on the unfinished statuses (pages of the
    server's cap, ``POLL_CONCURRENCY`` at a time, after the first), bulk GETs of 50 ids (4 at
    a time, as before) and bulk GETs of ``bulk_chunks`` (``POLL_CONCURRENCY`` at a time, as
    now). Returns (seconds, GETs) each."""
    import tempfile
    import threading
    import time
    from pathlib import Path

    from pytest_cekura.client import CekuraClient
    from pytest_cekura.poller import POLL_CONCURRENCY

    n_scen = n_runs // 5
    scen = {FIRST_ID + i: ("pass", 100_000.0) for i in range(n_scen)}  # none ends meanwhile
    with (
        tempfile.TemporaryDirectory() as tmp,
        TimedEmulator(scen, 0.05, Path(tmp), latency=latency) as emu,
        CekuraClient(emu.url, "bench-key-0123456789") as client,
    ):
        result = client.start_runs(
            "livekit", {"scenarios": [{"scenario": s} for s in scen], "frequency": 5}
        )
        ids = [run.id for run in result.runs]

        def in_parallel(jobs: list[object], one: object, concurrency: int) -> None:
            queue = iter(jobs)
            lock = threading.Lock()

            def worker() -> None:
                while True:
                    with lock:
                        job = next(queue, None)
                    if job is None:
                        return
                    one(job)  # type: ignore[operator]

            threads = [threading.Thread(target=worker) for _ in range(concurrency)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        out: dict[str, tuple[float, int]] = {}

        def page(number: int) -> dict[str, object]:
            params = {
                "result_id": str(result.id),
                "status__in": NON_TERMINAL,
                "page_size": "1000",
                "page": str(number),
            }
            return client._request("GET", "/test_framework/v2/runs/", params=params)  # type: ignore[no-any-return]

        before = len(emu.hits)
        started = time.monotonic()
        first = page(1)
        size = len(first["results"])  # type: ignore[arg-type]
        pages = math.ceil(int(first["count"]) / size)  # type: ignore[call-overload]
        in_parallel(list(range(2, pages + 1)), page, POLL_CONCURRENCY)
        out[f"run list, status__in, {POLL_CONCURRENCY} at a time"] = (
            time.monotonic() - started,
            len(emu.hits) - before,
        )
        for name, chunks, concurrency in (
            (
                "bulk, 50 ids, 4 at a time (before)",
                [ids[i : i + 50] for i in range(0, len(ids), 50)],
                4,
            ),
            (
                f"bulk, bulk_chunks, {POLL_CONCURRENCY} at a time (now)",
                client.bulk_chunks(ids),
                POLL_CONCURRENCY,
            ),
        ):
            before = len(emu.hits)
            started = time.monotonic()
            in_parallel(chunks, lambda c: client.get_runs(c, result_id=result.id), concurrency)  # type: ignore[arg-type]
            out[name] = (time.monotonic() - started, len(emu.hits) - before)
        return out


def add_rows(
    table: Table,
    n_scen: int,
    latency: float,
    after: Measured,
    before: Measured,
    alone: float | None = None,
) -> None:
    """The three rows of one configuration: preflight, one poll cycle, last outcome;
    ``alone``: pytest's own time for reporting as many tests as ``after.behind``."""
    ms = f"{latency * 1000:.0f} ms"
    runs = after.runs
    at_target = latency == 0.05
    rtt = f"limit {fmt_s(latency)} (1 round trip)" if latency else "limit ~0"

    def vs(now: float, then: float, limit: float) -> str:
        of_limit = f"; {now / limit:.1f}x limit" if limit > 0 else ""
        return f"{now / then:.2f}x before{of_limit}"

    table.add(
        f"{runs} runs ({n_scen} scen.), {ms}: preflight",
        f"{fmt_s(after.preflight)} ({after.preflight_gets} GETs)",
        f"before {fmt_s(before.preflight)} ({before.preflight_gets} GETs); {rtt}",
        vs(after.preflight, before.preflight, latency),
        f"<= {fmt_s(PREFLIGHT_TARGET)}" if at_target and n_scen == 1000 else "-",
        after.preflight <= PREFLIGHT_TARGET if at_target and n_scen == 1000 else None,
    )
    bound = math.ceil(after.cycle_runs / PAGE) + 1
    cycle_target = at_target and runs == 10_000
    table.add(
        f"{runs} runs, {ms}: one poll cycle",
        f"{fmt_s(after.cycle)} ({after.cycle_gets} GETs for {after.cycle_runs} runs)",
        f"before {fmt_s(before.cycle)} ({before.cycle_gets} GETs); {rtt}",
        vs(after.cycle, before.cycle, latency),
        f"<= {fmt_s(CYCLE_TARGET)}, <= {bound} GETs" if cycle_target else f"<= {bound} GETs",
        (after.cycle <= CYCLE_TARGET if cycle_target else True) and after.cycle_gets <= bound,
    )
    limit = after.longest + POLL + 1.0
    floor = (
        f"; {after.behind} tests reported after the longest run ended: pytest alone takes "
        f"{fmt_s(alone)} to report as many"
        if alone is not None
        else ""
    )
    table.add(
        f"{runs} runs, {ms}: first POST to last outcome",
        f"{fmt_s(after.to_last)} (session {fmt_s(after.wall)}, {after.rss:.0f} MB)",
        f"before {fmt_s(before.to_last)} (session {fmt_s(before.wall)}, "
        f"{before.rss:.0f} MB); "
        f"limit {fmt_s(after.longest)} (longest run){floor}",
        vs(after.to_last, before.to_last, after.longest),
        f"<= {fmt_s(limit)}" if runs == 10_000 and at_target else "-",
        after.to_last <= limit if runs == 10_000 and at_target else None,
    )


def add_finish_row(table: Table, n_scen: int, after: Measured, finish: Measured) -> None:
    """The 10,000-run target again with --cekura-order=finish: each test as its runs end."""
    limit = finish.longest + POLL + 1.0
    table.add(
        f"{finish.runs} runs, 50 ms: first POST to last outcome, --cekura-order=finish",
        f"{fmt_s(finish.to_last)} (session {fmt_s(finish.wall)}, {finish.rss:.0f} MB)",
        f"collection order {fmt_s(after.to_last)}; limit {fmt_s(finish.longest)} (longest run)",
        f"{finish.to_last / after.to_last:.2f}x collection order; "
        f"{finish.to_last / finish.longest:.1f}x limit",
        f"<= {fmt_s(limit)}",
        finish.to_last <= limit,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="100 and 1,000 runs, 0 and 50 ms, scale 0.01"
    )
    parser.add_argument(
        "--target-only",
        action="store_true",
        help="only the 10,000-run, 50 ms sessions (before, after, finish order): ~4 minutes",
    )
    parser.add_argument(
        "--fetch-only",
        action="store_true",
        help="only compare the run list with bulk GETs for one cycle of 10,000 runs",
    )
    args = parser.parse_args()
    header("bench_latency", args.quick)
    if args.fetch_only:
        fetch_table()
        return
    time_scale = 0.01 if args.quick else 0.05
    sizes = [(100, 1), (1000, 1)] + ([] if args.quick else [(2000, 5)])
    latencies = [0.0, 0.05] if args.quick else [0.0, 0.05, 0.15]
    if args.target_only:  # the 10,000-run targets alone, to re-check them quickly
        sizes, latencies = [(2000, 5)], [0.05]
    table = Table("Latency: preflight, one poll cycle, first POST to last outcome (issue #20)")
    for n_scen, freq in sizes:
        for latency in latencies:
            after = session(n_scen, freq, time_scale, latency, before=False)
            before = session(n_scen, freq, time_scale, latency, before=True)
            target = n_scen * freq == 10_000 and latency == 0.05
            alone = pytest_alone(after.behind) if target and after.behind else None
            add_rows(table, n_scen, latency, after, before, alone)
            if n_scen * freq == 10_000 and latency == 0.05:
                finish = session(n_scen, freq, time_scale, latency, False, order="finish")
                add_finish_row(table, n_scen, after, finish)
    table.notes.append(
        f"time scale {time_scale}: runs of 60-300 emulated s take {60 * time_scale:g}-"
        f"{300 * time_scale:g} s; --cekura-poll-interval={POLL}; one test per scenario; "
        "latency added by the emulator to every request; each configuration run once."
    )
    table.notes.append(
        "before = the same plugin with the pre-#20 strategies switched back on (one preflight "
        "GET per scenario, 8 at a time; bulk GETs of 50 ids, 4 at a time); ratio = after / "
        "before, and after / physical limit (one round trip; the longest run)."
    )
    table.notes.append(
        f"GET bound per cycle = ceil(runs outstanding / {PAGE}) + 1, {PAGE} being the "
        "emulator's page cap for the run list (the alternative the issue names)."
    )
    table.print()
    if not (args.quick or args.target_only):
        fetch_table()


def fetch_table() -> None:
    table = Table("Fetch strategies: one cycle over 10,000 unfinished runs (issue #20 item 2)")
    for latency in (0.0, 0.05):
        measured = fetch_strategies(10_000, latency)
        before_s, before_gets = measured["bulk, 50 ids, 4 at a time (before)"]
        for name, (seconds, gets) in measured.items():
            table.add(
                f"{latency * 1000:.0f} ms: {name}",
                f"{fmt_s(seconds)} ({gets} GETs)",
                f"bulk of 50: {fmt_s(before_s)} ({before_gets} GETs)",
                f"{seconds / before_s:.2f}x",
                "-",
            )
    table.notes.append(
        "client and emulator in this one process (they share its CPU, so only the ratios "
        "mean much); the run list is capped at 100 runs a page by the emulator, as DRF "
        "usually is; runs last long enough that none finishes during the cycle."
    )
    table.print()


if __name__ == "__main__":
    main()
