"""A bulk answer read the fast way (``RunSnapshot.read_bulk``: msgspec reads the kept fields
and cuts out each finished run's text) gives exactly what the general way gives
(``RunSnapshot.parse_all`` over the answer decoded as any JSON): the same snapshots, the same
refusals, the same runs, whatever the entries look like."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pytest_cekura.responses import bulk_batch, first_error
from pytest_cekura.snapshot import RunSnapshot

STATUSES = ["pending", "running", "completed", "failed", " COMPLETED ", "Evaluating", "odd"]
ANY_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**20), st.text(max_size=5))
METRIC = st.fixed_dictionaries(
    {"name": st.text(max_size=8), "score": st.one_of(st.none(), st.floats(0, 100), ANY_SCALAR)},
    optional={"explanation": st.one_of(st.lists(st.text(max_size=5)), ANY_SCALAR)},
)
ENTRY = st.fixed_dictionaries(
    {
        "id": st.one_of(st.integers(1, 10**6), st.sampled_from(["7", "x", ""]), st.none()),
        "status": st.one_of(st.sampled_from(STATUSES), ANY_SCALAR),
        "success": st.one_of(st.none(), st.booleans(), st.sampled_from(["true", "no", 1])),
    },
    optional={
        "result_id": st.one_of(st.integers(1, 10**4), st.sampled_from(["12", "?"])),
        "scenario": ANY_SCALAR,
        "scenario_name": ANY_SCALAR,
        "duration": st.one_of(st.sampled_from(["02:30", "", "1:02:03"]), ANY_SCALAR),
        "transcript": st.text(max_size=30),
        "evaluation": st.one_of(st.fixed_dictionaries({"metrics": st.lists(METRIC)}), ANY_SCALAR),
        "expected_outcome": st.one_of(
            st.fixed_dictionaries({"score": st.floats(0, 100)}), ANY_SCALAR
        ),
        "executed_at": ANY_SCALAR,
        "new_field": st.dictionaries(st.text(max_size=3), ANY_SCALAR, max_size=2),
    },
)


def read_both(entries: list[Any]) -> tuple[Any, Any]:
    content = json.dumps(entries).encode()
    refusals: dict[str, list[tuple[Any, str]]] = {"fast": [], "general": []}

    def refused(way: str) -> Any:
        def note(entry: Any, exc: ValidationError) -> None:
            refusals[way].append((entry.get("id"), first_error(exc)))

        return note

    fast = RunSnapshot.read_bulk(content, refused("fast"))
    general = RunSnapshot.parse_all(json.loads(content), refused("general"))
    assert fast is not None
    return (fast, refusals["fast"]), (general, refusals["general"])


def seen(snapshots: list[RunSnapshot]) -> list[tuple[Any, ...]]:
    return [
        (s.id, s.status, s.success, s.result_id, s.is_terminal, s.run().model_dump())
        for s in snapshots
    ]


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[*HealthCheck])
@given(st.lists(ENTRY, max_size=40))
def test_the_fast_reading_of_a_bulk_answer_is_the_general_one(entries: list[Any]) -> None:
    (fast, fast_refused), (general, general_refused) = read_both(entries)
    assert seen(fast) == seen(general)
    assert fast_refused == general_refused


def test_unknown_fields_and_texts_of_finished_runs_are_kept_as_sent() -> None:
    sent = {
        "id": 5,
        "status": "completed",
        "success": False,
        "transcript": "Main Agent: Caf\u00e9 \u2603",
        "new_field": {"big": [1, 2, 3]},
        "number": 10**30,
    }
    (fast, _), _ = read_both([sent, {"id": 6, "status": "running", "transcript": "so far"}])
    finished, going = fast
    assert finished.run().transcript == sent["transcript"]
    assert finished.run().model_extra == {"new_field": {"big": [1, 2, 3]}, "number": 10**30}
    # A run still going keeps its scalar fields only (its transcript so far is not kept).
    assert going.run().transcript is None


@pytest.mark.parametrize(
    "answer",
    [
        {"results": [{"id": 1, "status": "running"}]},  # a page, not an array
        [{"id": 1, "status": "running"}, 7],  # an entry that is not an object
        [{"id": 1, "status": "running", "score": float("nan")}],  # NaN: not JSON to msgspec
    ],
    ids=["page", "not-an-object", "nan"],
)
def test_answers_the_fast_way_declines_are_read_the_general_way(answer: Any) -> None:
    content = json.dumps(answer).encode()
    assert RunSnapshot.read_bulk(content, lambda entry, exc: None) is None

    def decoded(fast: Any) -> Any:
        assert fast(content) is None
        return json.loads(content)

    batch = bulk_batch(decoded)
    assert [(run.id, run.status) for run in batch.runs] == [(1, "running")]
