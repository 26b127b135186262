"""What the session knows about each Cekura test: plain data shared by the session, which
fills it in, and the reports, which show it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .markers import ScenarioSpec
from .models import CekuraResult, Run
from .outcome import Verdict


@dataclass(frozen=True)
class Assignment:
    """What the submission gave one test: its result, its runs, or why it has none."""

    result_id: int | None = None
    runs: tuple[Run, ...] = ()
    problems: tuple[str, ...] = ()
    group_name: str | None = None
    reused_age: float | None = None
    #: --cekura-rerun-failed: the earlier result these successful runs were kept from.
    earlier_result_id: int | None = None
    earlier_run_ids: frozenset[int] = frozenset()

    def result_of(self, run_id: int) -> int | None:
        """The result a run belongs to (its dashboard link needs it)."""
        return self.earlier_result_id if run_id in self.earlier_run_ids else self.result_id

    def rerun_label(self, runs: Sequence[Run]) -> str | None:
        """--cekura-rerun-failed: where one test's ``runs`` came from. Per test, not per
        request: a test whose runs all passed before kept them (from the result each run is
        in, which from the third session on need not be ``earlier_result_id``); only a test
        with runs started again was rerun, in the rerun's result."""
        if self.earlier_result_id is None:
            return None
        resent = [run for run in runs if run.id not in self.earlier_run_ids]
        if resent:
            where = {run.result_id or self.result_id for run in resent}
            return f"failed runs rerun in result {_ids(where)}"
        kept = {run.result_id or self.earlier_result_id for run in runs}
        return f"runs of result {_ids(kept)} reused"

    def to_json(self) -> dict[str, Any]:
        return {
            "earlier_result_id": self.earlier_result_id,
            "earlier_run_ids": sorted(self.earlier_run_ids),
            "reused_age": self.reused_age,
            "group_name": self.group_name,
            "result_id": self.result_id,
            "runs": [run.model_dump(mode="json", by_alias=True) for run in self.runs],
            "problems": list(self.problems),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Assignment:
        return cls(
            result_id=data["result_id"],
            runs=tuple(Run.model_validate(run) for run in data["runs"]),
            problems=tuple(data["problems"]),
            group_name=data["group_name"],
            reused_age=data["reused_age"],
            earlier_result_id=data["earlier_result_id"],
            earlier_run_ids=frozenset(data["earlier_run_ids"]),
        )


def _ids(ids: Iterable[int | None]) -> str:
    return ", ".join(str(i) for i in sorted(i for i in ids if i is not None)) or "?"


@dataclass(frozen=True)
class TestRecord:
    """One test's state, replaced whole (never changed in place) as the session learns more:
    its assignment at submission, its verdict and result when decided, no result once
    released."""

    spec: ScenarioSpec
    assignment: Assignment = field(default_factory=Assignment)
    verdict: Verdict | None = None
    result: CekuraResult | None = None
    #: Calls ended because --cekura-early-verdict had already decided the test.
    ended_early: int = 0
