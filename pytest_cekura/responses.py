"""Cekura's answers decoded for ``CekuraClient``: a page of scenarios, a bulk batch of runs
(the entries that parse, and why the others did not; decoded when the caller asks, see
``CekuraClient.fetch_runs``), and a model parsed or a
``ProtocolError`` naming the first field that did not fit."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .errors import ProtocolError
from .models import Result, Scenario
from .snapshot import RunSnapshot


@dataclass(frozen=True)
class ScenarioPage:
    """One page of the scenario list: the scenarios that parsed, the total the server counts
    for the query, and how many entries the page held (the page size the server used)."""

    scenarios: list[Scenario]
    count: int
    size: int


@dataclass(frozen=True)
class RunBatch:
    """One bulk answer: the runs that parsed, and the ids whose entries did not (with why)."""

    runs: list[RunSnapshot] = field(default_factory=list)
    invalid: dict[int, str] = field(default_factory=dict)

    def refuse(self, entry: Any, exc: ValidationError) -> None:
        """Keep why an entry did not parse, by its id (an entry without one is dropped)."""
        run_id = entry.get("id") if isinstance(entry, Mapping) else None
        if isinstance(run_id, int):
            self.invalid[run_id] = first_error(exc)


def parse_result(model: type[Result], data: Any, what: str) -> Result:
    """``data`` as ``model``; else a ``ProtocolError`` naming ``what`` and the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(f"{what}: unexpected response shape: {first_error(exc)}") from None


def parse_runs(entries: Iterable[Any]) -> RunBatch:
    """Bulk entries as snapshots; an entry that does not parse is kept, by id, with why."""
    batch = RunBatch()
    batch.runs.extend(RunSnapshot.parse_all(entries, batch.refuse))
    return batch


def bulk_batch(answer: Callable[[Callable[[bytes], Any]], Any]) -> RunBatch:
    """A bulk answer, decoded now (``answer``), as snapshots: its JSON is dropped as this
    returns, so only the snapshots stay. ``answer`` is given the fast reader of an answer
    as sent (``RunSnapshot.read_bulk``), and decodes it as any answer only if that declines
    (not a JSON array of objects: a page of results, say)."""

    def read(content: bytes) -> RunBatch | None:
        batch = RunBatch()
        runs = RunSnapshot.read_bulk(content, batch.refuse)
        if runs is None:
            return None
        batch.runs.extend(runs)
        return batch

    data = answer(read)
    if isinstance(data, RunBatch):
        return data
    entries = data.get("results") if isinstance(data, Mapping) else data
    if not isinstance(entries, list):
        raise ProtocolError(f"GET runs/bulk/: expected a JSON array, got {type(data).__name__}")
    return parse_runs(entries)


def merged_batches(parts: Iterable[Callable[[], RunBatch]]) -> RunBatch:
    """The batches of a bulk request that was split in parts, decoded and put together."""
    runs: list[RunSnapshot] = []
    invalid: dict[int, str] = {}
    for part in parts:
        batch = part()
        runs += batch.runs
        invalid.update(batch.invalid)
    return RunBatch(runs, invalid)


def first_error(exc: ValidationError) -> str:
    """The first field pydantic rejected, as ``path: message``."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    return f"{where}: {err['msg']}"
