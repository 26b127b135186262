"""Request counts at scale (issue #20): preflight reads the scenario list a page at a time,
polling asks for every outstanding run once a cycle in the biggest bulk chunks, and a
Retry-After pauses every request in flight. Counted in the emulator's request log."""

from __future__ import annotations

import json
import math
import platform
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from conftest import SENTINEL_KEY, Suite
from pytest_cekura import poller as poller_module
from pytest_cekura.client import LIST_PAGE_SIZE, CekuraClient, RunBatch
from pytest_cekura.emulator import Emulator, load_catalogue
from pytest_cekura.emulator.server import MAX_PAGE_SIZE
from pytest_cekura.models import Run
from pytest_cekura.poller import Poller
from pytest_cekura.preflight import check_scenarios
from pytest_cekura.snapshot import PACK_RUNS, Packed, RunSnapshot

#: The emulator's own page cap, which the plugin does not know in advance.
PAGE = MAX_PAGE_SIZE


def catalogue(ids: range, *, agent: int = 1, duration: Callable[[int], float] | None = None) -> str:
    lines = []
    for sid in ids:
        lines.append(f"[[scenario]]\nid = {sid}\nagent = {agent}\n")
        if duration is not None:
            lines.append(f"duration_s = {duration(sid):.1f}\n")
    return "".join(lines)


def scenario_gets(emulator: Emulator) -> tuple[list[dict[str, str]], list[str]]:
    """The scenario list pages asked (their queries) and the single look-ups (their ids)."""
    pages, singles = [], []
    for record in emulator.requests:
        if record.method != "GET" or "/scenarios" not in record.path:
            continue
        if record.path.rstrip("/").endswith("/scenarios"):
            pages.append(record.query)
        else:
            singles.append(record.path.rstrip("/").rsplit("/", 1)[1])
    return pages, singles


def test_preflight_reads_the_scenario_list_in_pages_and_looks_up_only_what_it_lacks(
    make_suite: Callable[[str], Suite],
) -> None:
    # 250 listed scenarios (3 pages of the emulator's 100), one that exists but is not in the
    # list (any unlisted id does), and one deleted: only its test errors.
    suite = make_suite(catalogue(range(1, 251)) + "[[scenario]]\nid = 999\nexists = false\n")
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(*range(1, 251))
        def test_listed(): pass

        @pytest.mark.cekura_scenario(5000)
        def test_unlisted(): pass

        @pytest.mark.cekura_scenario(999)
        def test_deleted(): pass
        """
    )
    result = suite.run()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*scenario 999 does not exist in your Cekura project*"])
    pages, singles = scenario_gets(suite.emulator)
    # GETs grow with pages: 3 list pages for 250 scenarios, not 250 look-ups.
    assert sorted(q.get("page", "1") for q in pages) == ["1", "2", "3"]
    assert pages[0]["page_size"] == str(LIST_PAGE_SIZE)
    # Later pages ask for the size the server answered with, so no scenario falls between.
    assert {q["page_size"] for q in pages[1:]} == {str(PAGE)}
    assert sorted(singles) == ["5000", "999"]
    assert Counter(run["scenario"] for run in suite.emulator.runs) == Counter(
        {**dict.fromkeys(range(1, 251), 1), 5000: 1}
    )


def test_preflight_lists_the_scenarios_of_the_agent_the_tests_name(
    make_suite: Callable[[str], Suite],
) -> None:
    suite = make_suite(catalogue(range(1, 31), agent=42) + catalogue(range(31, 61), agent=1))
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(*range(1, 31), agent=42)
        def test_a(): pass
        """
    )
    suite.run().assert_outcomes(passed=1)
    pages, singles = scenario_gets(suite.emulator)
    assert [q.get("agent_id") for q in pages] == ["42"]
    assert singles == []


def test_a_list_that_would_cost_more_than_single_look_ups_is_not_paged_through(
    make_emulator: Callable[[str], Emulator],
) -> None:
    # 400 scenarios in the unfiltered list, 2 wanted and neither on the first page: reading
    # 3 more pages would cost more than 2 single GETs.
    emulator = make_emulator(catalogue(range(1, 401)))
    with CekuraClient(emulator.url, SENTINEL_KEY) as client:
        check = check_scenarios(client, [350, 399])
    assert check.missing == frozenset()
    assert set(check.own_agents) == {350, 399}
    pages, singles = scenario_gets(emulator)
    assert len(pages) == 1
    assert sorted(singles) == ["350", "399"]


def test_without_a_scenario_list_preflight_looks_each_scenario_up(
    make_emulator: Callable[[str], Emulator],
) -> None:
    emulator = make_emulator(catalogue(range(1, 11)) + "[[scenario]]\nid = 999\nexists = false\n")
    # A deployment that does not serve the list: its first page is a 404.
    emulator.inject("scenario", "error_before", status=404, times=1)
    with CekuraClient(emulator.url, SENTINEL_KEY) as client:
        check = check_scenarios(client, [*range(1, 11), 999])
    assert check.missing == frozenset({999})
    assert set(check.own_agents) == set(range(1, 11))
    pages, singles = scenario_gets(emulator)
    assert len(pages) == 1
    assert sorted(singles, key=int) == [str(i) for i in [*range(1, 11), 999]]


def bulk_asks(emulator: Emulator, start: int) -> list[list[int]]:
    """The run ids of each bulk GET logged from request number ``start`` on."""
    return [
        [int(i) for i in r.query["run_ids"].split(",")]
        for r in emulator.requests[start:]
        if r.method == "GET" and "/runs/bulk" in r.path
    ]


def test_a_poll_cycle_asks_for_every_outstanding_run_exactly_once_in_pages(
    make_emulator: Callable[[str], Emulator],
) -> None:
    # 1,000 runs ending at different times, so runs finish between the chunks of one cycle
    # and chunk boundaries move from cycle to cycle. Each cycle: every run still outstanding
    # asked for exactly once, GETs bounded by pages; at the end every run counted once.
    emulator = make_emulator(catalogue(range(1, 201), duration=lambda sid: 50 + 5 * sid))
    with CekuraClient(emulator.url, SENTINEL_KEY) as client:
        result = client.start_runs(
            "livekit", {"scenarios": [{"scenario": s} for s in range(1, 201)], "frequency": 5}
        )
        assert len(result.runs) == 1000
        poller = Poller(client, interval=0.05, deadline=time.monotonic() + 60)
        poller.track(result.runs)
        cycles = 0
        finished_per_cycle = []
        while poller.outstanding():
            before = set(poller.outstanding())
            start = len(emulator.requests)
            poller.poll_once()
            asks = bulk_asks(emulator, start)
            asked = [run_id for ask in asks for run_id in ask]
            assert Counter(asked) == Counter(before)  # once each, none left out, no stranger
            assert len(asks) <= math.ceil(len(before) / PAGE) + 1
            assert len(asks) == len(client.bulk_chunks(sorted(before)))
            # Scoped to the one result they belong to.
            assert all(
                r.query.get("result_id") == str(result.id)
                for r in emulator.requests[start:]
                if "/runs/bulk" in r.path
            )
            finished_per_cycle.append(len(before) - len(poller.outstanding()))
            cycles += 1
            time.sleep(0.05)
        assert cycles > 2
        assert sum(finished_per_cycle) == 1000
        # About 430 five-digit ids a chunk (a request line under 4 KB): 1,000 runs are three
        # GETs, not twenty.
        assert len(client.bulk_chunks(list(range(90001, 91001)))) == 3
        states = poller.states([run.id for run in result.runs])
        assert all(state.done and state.poll_error is None for state in states.values())
        assert poller._counts()["done"] == 1000


def test_a_bulk_get_too_long_for_the_server_is_split_and_the_chunks_shrink(
    make_emulator: Callable[[str], Emulator],
) -> None:
    emulator = make_emulator(catalogue(range(1, 101), duration=lambda sid: 10_000))
    with CekuraClient(emulator.url, SENTINEL_KEY) as client:
        result = client.start_runs(
            "livekit", {"scenarios": [{"scenario": s} for s in range(1, 101)], "frequency": 6}
        )
        budget = client.bulk_budget
        emulator.inject("bulk", "error_before", status=414, times=1)
        poller = Poller(client, interval=0.05, deadline=time.monotonic() + 30)
        poller.track(result.runs)
        poller.poll_once()
        states = poller.states([run.id for run in result.runs])
        assert all(state.poll_error is None for state in states.values())
        assert client.bulk_budget < budget
        start = len(emulator.requests)
        poller.poll_once()
        asks = bulk_asks(emulator, start)
        assert sorted(i for ask in asks for i in ask) == sorted(run.id for run in result.runs)
        assert len(asks) == len(client.bulk_chunks(sorted(run.id for run in result.runs)))


def test_a_retry_after_pauses_every_request_in_flight_not_only_its_own(
    make_emulator: Callable[[str], Emulator],
) -> None:
    emulator = make_emulator("")
    emulator.inject("scenario", "rate_limit", retry_after=1, times=1)
    with CekuraClient(emulator.url, SENTINEL_KEY) as client:
        first = threading.Thread(target=client.get_scenario, args=(1,))
        first.start()
        # Readiness, not a sleep: wait until the client has read the 429.
        limit = time.monotonic() + 10
        while client.paused_for == 0 and time.monotonic() < limit:
            time.sleep(0.005)
        began = time.monotonic()
        client.get_scenario(2)  # not rate-limited itself, but Cekura asked the key to wait
        waited = time.monotonic() - began
        first.join(10)
    assert waited >= 0.7  # the rest of the 1 s pause
    assert [r.status for r in emulator.requests] == [429, 200, 200]


@pytest.mark.parametrize("page_size", [PAGE])
def test_a_scenario_list_page_reports_the_size_the_server_used(
    make_emulator: Callable[[str], Emulator], page_size: int
) -> None:
    emulator = make_emulator(catalogue(range(1, 151)))
    with CekuraClient(emulator.url, SENTINEL_KEY) as client:
        first = client.list_scenarios()
        past = client.list_scenarios(page=9, page_size=first.size)
    assert (first.count, first.size, len(first.scenarios)) == (150, page_size, page_size)
    assert (past.count, past.size, past.scenarios) == (0, 0, [])


# --- memory and CPU at 10,000 runs (issue #20, target 5 kept) ------------------------------


def test_a_run_still_going_is_kept_as_its_scalar_fields_and_a_finished_one_whole() -> None:
    # The poller reads every run still going at every interval; keeping Cekura's whole
    # object for each was most of its memory at 10,000 runs. Its scalar fields stay (a report
    # at the deadline shows them); its transcript so far and unknown fields do not.
    going = {
        "id": 8,
        "status": "running",
        "scenario": 30,
        "scenario_name": "Refill",
        "result_id": 5000,
        "executed_at": "2026-12-01T06:00:00.000000Z",
        "transcript": "Main Agent: Hello",
        "transcript_object": [{"role": "Main Agent", "content": "Hello", "timestamp": 1.0}],
        "new_field": {"big": "x" * 1000},
    }
    snapshot = RunSnapshot.parse(going)
    assert isinstance(snapshot.detail, tuple)
    run = snapshot.run()
    assert (run.id, run.status, run.scenario, run.scenario_name, run.result_id) == (
        8,
        "running",
        30,
        "Refill",
        5000,
    )
    assert run.executed_at == "2026-12-01T06:00:00.000000Z"
    assert (run.transcript, run.transcript_object, run.model_extra) == (None, [], {})
    # Finished: compressed, and given back as sent, unknown fields included.
    done = {**going, "status": "completed", "success": True}
    finished = RunSnapshot.parse(done)
    assert isinstance(finished.detail, Packed)
    assert len(finished.detail.pack) < len(json.dumps(done))
    assert finished.run() == Run.model_validate(done)
    assert finished.run().model_extra == {"new_field": {"big": "x" * 1000}}


def test_finished_runs_of_a_bulk_answer_are_packed_together_and_read_back_each_whole() -> None:
    # One zlib call per PACK_RUNS finished runs (each call lets go of the GIL), runs still
    # going and refused entries in between; every run reads back as sent, in order.
    entries: list[dict[str, object]] = []
    for i in range(1, 41):
        entry: dict[str, object] = {
            "id": i,
            "status": "completed" if i % 4 else "running",
            "success": bool(i % 3) if i % 4 else None,
            "transcript": f"Main Agent: hello {i}",
            "new_field": {"n": i},
        }
        entries.append(entry)
    entries.insert(10, {"id": 999, "status": "completed", "success": True, "duration": {}})
    refused: list[object] = []
    snapshots = RunSnapshot.parse_all(entries, lambda entry, exc: refused.append(entry["id"]))
    assert refused == [999]
    assert [s.id for s in snapshots] == list(range(1, 41))
    packs = {id(s.detail.pack) for s in snapshots if isinstance(s.detail, Packed)}
    finished = [s for s in snapshots if s.is_terminal]
    assert len(finished) == 30
    assert len(packs) == math.ceil(30 / PACK_RUNS)
    for snapshot in reversed(snapshots):  # not in pack order: each read still finds its run
        sent = entries[snapshot.id - 1 if snapshot.id <= 10 else snapshot.id]
        if snapshot.is_terminal:
            assert snapshot.run() == Run.model_validate(sent)
        else:
            assert snapshot.run().transcript is None


def test_entries_typed_as_cekura_types_them_read_as_the_lenient_models_read_them() -> None:
    # Bulk entries as Cekura types them skip pydantic; anything else takes the lenient path,
    # with the same results.
    typed = RunSnapshot.parse({"id": 1, "status": "completed", "success": True, "result_id": 7})
    loose = RunSnapshot.parse(
        {"id": "1", "status": " COMPLETED ", "success": "true", "result_id": "7"}
    )
    assert (typed.id, typed.status, typed.success, typed.result_id) == (1, "completed", True, 7)
    assert (loose.id, loose.status, loose.success, loose.result_id) == (1, "completed", True, 7)
    with pytest.raises(ValidationError):
        RunSnapshot.parse({"id": "not an id", "status": "running"})
    # Runs share one set of the fields sent instead of one each; copies get their own.
    runs = [Run.model_validate({"id": i, "status": "pending"}) for i in (1, 2)]
    assert runs[0].model_fields_set is runs[1].model_fields_set
    assert runs[0].model_copy(update={"id": 3}).model_fields_set is not runs[0].model_fields_set


def test_answers_are_fetched_on_several_threads_and_decoded_on_the_polling_one(
    make_emulator: Callable[[str], Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    # glibc gives each allocating thread a heap of its own: fetchers that decoded answers
    # kept one heap of garbage each. Fetchers only wait on the network; the thread running
    # the cycle decodes, and no more answers wait to be decoded than fetchers run.
    emulator = make_emulator(catalogue(range(1, 101), duration=lambda sid: 10_000))
    monkeypatch.setattr(poller_module, "POLL_CONCURRENCY", 3)
    with CekuraClient(emulator.url, SENTINEL_KEY) as client:
        result = client.start_runs(
            "livekit", {"scenarios": [{"scenario": s} for s in range(1, 101)], "frequency": 20}
        )
        fetched_on: set[str] = set()
        decoded_on: set[str] = set()
        waiting = [0]
        most_waiting = [0]
        lock = threading.Lock()
        fetch = client.fetch_runs

        def spying_fetch(*args: Any, **kwargs: Any) -> Callable[[], RunBatch]:
            answer = fetch(*args, **kwargs)
            with lock:
                fetched_on.add(threading.current_thread().name)
                waiting[0] += 1
                most_waiting[0] = max(most_waiting[0], waiting[0])

            def decode() -> RunBatch:
                with lock:
                    decoded_on.add(threading.current_thread().name)
                    waiting[0] -= 1
                time.sleep(0.01)  # a slow decoder: answers would pile up without a bound
                return answer()

            return decode

        monkeypatch.setattr(client, "fetch_runs", spying_fetch)
        poller = Poller(client, interval=0.05, deadline=time.monotonic() + 30)
        poller.track(result.runs)
        chunks = len(client.bulk_chunks(sorted(run.id for run in result.runs)))
        assert chunks >= 5
        poller.poll_once()
        states = poller.states([run.id for run in result.runs])
    assert all(state.poll_error is None for state in states.values())
    assert decoded_on == {threading.current_thread().name}
    assert fetched_on
    assert threading.current_thread().name not in fetched_on
    assert most_waiting[0] <= 3


def test_the_emulators_bulk_answer_is_the_same_text_from_kept_runs_and_follows_each_phase(
    tmp_path: Path,
) -> None:
    # The emulator keeps each run's JSON text until its phase changes (a poll of 10,000
    # runs was 85 us a run of its CPU); the answer is byte for byte what it built before.
    now = [1000.0]
    path = tmp_path / "catalogue.toml"
    path.write_text(catalogue(range(1, 4), duration=lambda sid: 60 * sid))
    with (
        Emulator(
            load_catalogue(path), api_key=SENTINEL_KEY, time_scale=1.0, clock=lambda: now[0]
        ) as emulator,
        CekuraClient(emulator.url, SENTINEL_KEY) as client,
    ):
        result = client.start_runs(
            "livekit", {"scenarios": [{"scenario": s} for s in range(1, 4)], "frequency": 2}
        )
        ids = [run.id for run in result.runs]
        store = emulator._store
        seen = []
        for moment in (1000.0, 1000.0, 1030.0, 1090.0, 1300.0, 1300.0):
            now[0] = moment
            text = store.runs_json(ids)
            assert json.loads(text) == store.runs(ids)
            answer = httpx.get(
                f"{emulator.url}/test_framework/v2/runs/bulk/",
                params={"run_ids": ",".join(map(str, ids))},
                headers={"X-CEKURA-API-KEY": SENTINEL_KEY},
            )
            assert answer.content == text
            seen.append([run["status"] for run in json.loads(text)])
        # Runs still going are kept; a finished run's text is not (it is asked for once).
        assert not store._views._texts
    assert seen[0] == seen[1]
    assert seen[0] != seen[2] != seen[3]
    assert all(status == "completed" for status in seen[-1])


def test_the_mmap_threshold_is_kept_where_glibc_lets_it_be_unless_the_user_set_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert not poller_module.fix_mmap_threshold()
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536")
    assert not poller_module.fix_mmap_threshold()
    monkeypatch.delenv("GLIBC_TUNABLES")
    glibc = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"
    assert poller_module.fix_mmap_threshold() is glibc
