"""What the poller keeps of each run: ``RunSnapshot``, its id, status and success, and the run
itself compactly (a finished run as compressed JSON, packed with others of its bulk answer, a
run still going as its scalar fields), parsed into a ``Run`` only when a test is decided
(docs/performance.md, target 5)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .lenient import LenientBool, LenientInt, Status
from .models import KNOWN_STATUSES, TERMINAL_STATUSES, Run
from .models import _finished as finished
from .models import _succeeded as succeeded


class _RunHead(BaseModel):
    """The fields of a run that say whether it is finished; everything else is ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: int
    status: Status = "pending"
    success: LenientBool = None
    result_id: LenientInt = None


def _head(entry: Any) -> tuple[int, str, bool | None, int | None]:
    """Id, status, success and result of a bulk entry. Entries as Cekura types them are read
    directly (the poller reads 10,000 runs a cycle); anything else goes through ``_RunHead``
    and its lenient validators, which raise ``ValidationError`` for an unreadable one."""
    if type(entry) is dict:
        run_id, status = entry.get("id"), entry.get("status")
        success, result_id = entry.get("success"), entry.get("result_id")
        if (
            type(run_id) is int
            and type(status) is str
            and status in KNOWN_STATUSES
            and (success is None or type(success) is bool)
            and (result_id is None or type(result_id) is int)
        ):
            return run_id, status, success, result_id
    head = _RunHead.model_validate(entry)
    return head.id, head.status, head.success, head.result_id


#: zlib's preset dictionary for finished runs: the field names and shapes of a run object
#: (cekura-api.md section 4), which repeat in every run and are most of a short one, so a
#: run compresses to about 900 bytes instead of 1,240 (the emulator's; at 10,000 runs, 3 MB).
_ZDICT = json.dumps(
    {
        "id": 0,
        "result_id": 0,
        "result_name": "",
        "scenario": 0,
        "scenario_name": "",
        "scenario_type": "instruction",
        "agent": 0,
        "agent_name": "",
        "agent_number": None,
        "run_type": None,
        "personality": 0,
        "personality_name": "",
        "status": "completed",
        "success": True,
        "evaluation_status": "success",
        "scenario_instructions": "",
        "expected_outcome_prompt": "",
        "expected_outcome": {
            "score": 100,
            "explanation": [],
            "outcome_alignments": [{"outcome": "", "prompt_part": "", "aligned": True}],
        },
        "evaluation": {
            "metrics": [
                {
                    "id": 0,
                    "name": "",
                    "type": "binary_workflow_adherence",
                    "score": 100,
                    "value": "",
                    "enum": "",
                    "explanation": [],
                    "extra": {},
                },
                {"type": "numeric"},
            ]
        },
        "transcript": "Main Agent: \nTesting Agent: ",
        "transcript_object": [
            {
                "role": "Main Agent",
                "content": "",
                "normalized_content": "",
                "comparison_spans": [],
                "timestamp": 0.0,
            },
            {"role": "Testing Agent"},
        ],
        "duration": "00:00",
        "voice_recording_url": "https://",
        "call_id": "",
        "provider_call_id": "",
        "number": None,
        "inbound_number": "",
        "outbound_number": "",
        "error_message": "",
        "feedback": "",
        "is_reviewed": False,
        "critical_categories": [],
        "run_as_text": False,
        "test_profile_data": None,
        "trace_id": "",
        "metadata": {},
        "mocked_tool_names": [],
        "generated_mock_tool_entries": [],
        "testing_channel_index": None,
        "timestamp": "2026-01-01T00:00:00.000000Z",
        "executed_at": "2026-01-01T00:00:00.000000Z",
    },
    separators=(",", ":"),
).encode()


def _compress(source: bytes) -> bytes:
    packer = zlib.compressobj(1, zdict=_ZDICT)
    return packer.compress(source) + packer.flush()


def _decompress(packed: bytes) -> bytes:
    unpacker = zlib.decompressobj(zdict=_ZDICT)
    return unpacker.decompress(packed) + unpacker.flush()


def _json(entry: Any) -> bytes:
    """A bulk entry as compact JSON: orjson (a tenth of ``json``'s time, 10,000 times a
    session); ``json`` for what orjson refuses (an entry ``json`` decoded: integers over 64
    bits, NaN)."""
    import orjson

    try:
        return orjson.dumps(entry)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(entry, separators=(",", ":")).encode()


#: Finished runs compressed together, at most this many a pack. Every zlib call lets go of
#: the GIL and must then win it back from a busy main thread: one call per run cost the
#: poller ~0.3 ms a run, about half a poll cycle while runs were finishing at 10,000 runs
#: (docs/performance.md). A test's runs are usually side by side in a bulk answer.
PACK_RUNS = 16


class _Pack:
    """Finished runs' JSON texts, one after another, compressed as one."""

    __slots__ = ("packed",)

    def __init__(self, texts: list[bytes]) -> None:
        self.packed = _compress(b"".join(texts))


#: The pack last decompressed, and its text: the runs of one test are read one after
#: another and usually share a pack. One pair, swapped whole (safe across threads).
_last_unpacked: tuple[_Pack, bytes] | None = None


@dataclass(frozen=True, slots=True)
class Packed:
    """Where a finished run's JSON text is: ``text[start:end]`` of its pack."""

    pack: _Pack
    start: int
    end: int

    def text(self) -> bytes:
        global _last_unpacked
        last = _last_unpacked
        if last is None or last[0] is not self.pack:
            last = _last_unpacked = (self.pack, _decompress(self.pack.packed))
        return last[1][self.start : self.end]


def _packed(texts: list[bytes]) -> list[Packed]:
    """One pack of ``texts``, and each text's place in it."""
    pack = _Pack(texts)
    places: list[Packed] = []
    start = 0
    for text in texts:
        places.append(Packed(pack, start, start + len(text)))
        start += len(text)
    return places


#: What a snapshot keeps of a run still going, in this order: enough to show it in a report
#: if the session ends first. Its final state arrives in full with the poll that sees it end.
_LIVE_FIELDS = (
    "id",
    "status",
    "success",
    "evaluation_status",
    "result_id",
    "result_name",
    "scenario",
    "scenario_name",
    "agent",
    "agent_name",
    "personality",
    "personality_name",
    "duration",
    "error_message",
    "voice_recording_url",
    "timestamp",
    "executed_at",
)


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """A run as Cekura last showed it, kept compact: the fields that say how it is going, and
    the run object itself, parsed into a ``Run`` only when a test asks for it.

    A parsed ``Run`` with its transcript and metrics takes ~10 KB of objects. A finished run
    is kept as compressed JSON (a few hundred bytes), in a pack with up to ``PACK_RUNS``
    others of its bulk answer. A run still going keeps only its scalar fields
    (``_LIVE_FIELDS``), as a tuple: the next poll replaces it, so compressing it would cost
    more CPU than it saves, and the whole objects Cekura sends for runs still going were most
    of the poller's memory. A session following 10,000 runs keeps snapshots, not ``Run``s.
    """

    id: int
    status: str
    success: bool | None
    detail: Packed | tuple[Any, ...] | Run
    #: The result the run belongs to, when known (scopes the bulk poll).
    result_id: int | None = None

    @classmethod
    def parse(cls, entry: Any) -> RunSnapshot:
        """Read one entry of a bulk answer; raises ``ValidationError`` if it is unreadable.

        A finished run is validated in full here, once, so a run whose detail cannot be read
        is found while polling, not when its test is reported. A run still going is only
        checked for its id and status: the poller reads it again and again. Of a run still
        going only the scalar fields are kept (no transcript so far, no unknown fields): at
        10,000 runs the whole objects took more memory than everything else the plugin keeps.
        """
        return cls.parse_all([entry], _raise)[0]

    @classmethod
    def parse_all(
        cls, entries: Iterable[Any], refused: Callable[[Any, ValidationError], None]
    ) -> list[RunSnapshot]:
        """``parse`` for every entry of a bulk answer, in order; an entry that does not
        parse is given to ``refused`` instead. Finished runs are compressed ``PACK_RUNS``
        at a time."""
        snapshots: list[RunSnapshot | None] = []
        #: Finished runs not packed yet: their place in ``snapshots``, head and JSON.
        waiting: list[tuple[int, tuple[int, str, bool | None, int | None], bytes]] = []

        def pack() -> None:
            places = _packed([text for _, _, text in waiting])
            for (index, head, _), place in zip(waiting, places, strict=True):
                run_id, status, success, result_id = head
                snapshots[index] = cls(run_id, status, success, place, result_id)
            waiting.clear()

        for entry in entries:
            try:
                head = _head(entry)
                run_id, status, success, result_id = head
                if not finished(status, success):
                    live = tuple(map(entry.get, _LIVE_FIELDS))
                    snapshots.append(cls(run_id, status, success, live, result_id))
                    continue
                Run.model_validate(entry)
            except ValidationError as exc:
                refused(entry, exc)
                continue
            waiting.append((len(snapshots), head, _json(entry)))
            snapshots.append(None)
            if len(waiting) == PACK_RUNS:
                pack()
        if waiting:
            pack()
        return [snapshot for snapshot in snapshots if snapshot is not None]

    @classmethod
    def of(cls, run: Run) -> RunSnapshot:
        return cls(run.id, run.status, run.success, run, run.result_id)

    @property
    def is_terminal(self) -> bool:
        return finished(self.status, self.success)

    @property
    def call_over(self) -> bool:
        """The call itself has ended (it may still be being scored): nothing left to end."""
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return succeeded(self.status, self.success)

    def run(self) -> Run:
        """The full run. A run still going whose detail is unreadable (never checked in full
        by ``parse``) is shown by its id and status alone."""
        detail = self.detail
        if isinstance(detail, Run):
            return detail
        try:
            if isinstance(detail, Packed):
                return Run.model_validate_json(detail.text())
            fields = zip(_LIVE_FIELDS, detail, strict=True)
            return Run.model_validate({name: value for name, value in fields if value is not None})
        except ValidationError:
            return Run(
                id=self.id, status=self.status, success=self.success, result_id=self.result_id
            )


def _raise(_: Any, exc: ValidationError) -> None:
    raise exc
