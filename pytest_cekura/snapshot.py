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

import msgspec
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


#: A run's id, status, success and result.
Head = tuple[int, str, bool | None, int | None]


def _head(entry: Any) -> Head:
    """Id, status, success and result of a bulk entry. Entries as Cekura types them are read
    directly (the poller reads 10,000 runs a cycle); anything else goes through ``_RunHead``
    and its lenient validators, which raise ``ValidationError`` for an unreadable one."""
    if type(entry) is dict:
        get = entry.get
        head = _typed_head(get("id"), get("status"), get("success"), get("result_id"))
        if head is not None:
            return head
    read = _RunHead.model_validate(entry)
    return read.id, read.status, read.success, read.result_id


def _typed_head(run_id: Any, status: Any, success: Any, result_id: Any) -> Head | None:
    """The head as Cekura types it, or None if any part needs the lenient validators."""
    if (
        type(run_id) is int
        and type(status) is str
        and status in KNOWN_STATUSES
        and (success is None or type(success) is bool)
        and (result_id is None or type(result_id) is int)
    ):
        return run_id, status, success, result_id
    return None


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
    """A bulk entry as compact JSON: msgspec (a tenth of ``json``'s time); ``json`` for what
    msgspec refuses (lone surrogates, which ``json`` decodes and escapes back)."""
    try:
        return msgspec.json.encode(entry)
    except (msgspec.MsgspecError, TypeError, ValueError):
        return json.dumps(entry, separators=(",", ":")).encode()


#: Finished runs compressed together, at most this many a pack. Every zlib call lets go of
#: the GIL and must then win it back from a busy main thread: one call per run cost the
#: poller ~0.3 ms a run, about half a poll cycle while runs were finishing at 10,000 runs
#: (docs/performance.md). A test's runs are usually side by side in a bulk answer.
PACK_RUNS = 16


#: The pack last decompressed, and its text: the runs of one test are read one after
#: another and usually share a pack. One pair, swapped whole (safe across threads).
_last_unpacked: tuple[bytes, bytes] | None = None


@dataclass(frozen=True, slots=True)
class Packed:
    """Where a finished run's JSON text is: ``text[start:end]`` of its pack (finished runs'
    texts, one after another, compressed as one)."""

    pack: bytes
    start: int
    end: int

    def text(self) -> bytes:
        global _last_unpacked
        last = _last_unpacked
        if last is None or last[0] is not self.pack:
            last = _last_unpacked = (self.pack, _decompress(self.pack))
        return last[1][self.start : self.end]


def _packed(texts: list[bytes]) -> list[Packed]:
    """One pack of ``texts``, and each text's place in it."""
    pack = _compress(b"".join(texts))
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
        packer = _Packer()
        for entry in entries:
            try:
                head = _head(entry)
                if not finished(head[1], head[2]):
                    packer.live(head, tuple(map(entry.get, _LIVE_FIELDS)))
                    continue
                Run.model_validate(entry)
            except ValidationError as exc:
                refused(entry, exc)
                continue
            packer.finished(head, _json(entry))
        return packer.snapshots()

    @classmethod
    def read_bulk(
        cls, content: bytes, refused: Callable[[Any, ValidationError], None]
    ) -> list[RunSnapshot] | None:
        """``parse_all`` for a bulk answer as sent, the fast way; None if it is not a JSON
        array of objects (``parse_all`` then reads it, decoded as any answer is).

        msgspec reads only the fields a snapshot keeps (``_LIVE_FIELDS``), skipping the
        rest of each entry unparsed: decoding every field of 10,000 runs into dicts was
        most of a poll cycle's CPU (docs/performance.md, issue #20). A finished run keeps
        the text Cekura sent (a second, lazy pass cuts the answer into entries), validated
        as its test will read it."""
        try:
            entries = _LIVE_ENTRIES.decode(content)
        except (msgspec.MsgspecError, RecursionError):
            return None
        texts: list[msgspec.Raw] | None = None
        packer = _Packer()
        for index, entry in enumerate(entries):
            live = msgspec.structs.astuple(entry)
            try:
                head = _typed_head(live[0], live[1], live[2], live[4]) or _head(
                    dict(zip(_LIVE_FIELDS, live, strict=True))
                )
                if not finished(head[1], head[2]):
                    packer.live(head, live)
                    continue
                if texts is None:
                    texts = _ENTRY_TEXTS.decode(content)
                text = bytes(texts[index])
                Run.model_validate_json(text)
            except ValidationError as exc:
                refused(dict(zip(_LIVE_FIELDS, live, strict=True)), exc)
                continue
            packer.finished(head, text)
        return packer.snapshots()

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


class _Packer:
    """Snapshots in the order their entries came, finished runs packed ``PACK_RUNS`` at a
    time."""

    def __init__(self) -> None:
        self._snapshots: list[RunSnapshot | None] = []
        #: Finished runs not packed yet: their place in ``_snapshots``, head and JSON text.
        self._waiting: list[tuple[int, Head, bytes]] = []

    def live(self, head: Head, fields: tuple[Any, ...]) -> None:
        run_id, status, success, result_id = head
        self._snapshots.append(RunSnapshot(run_id, status, success, fields, result_id))

    def finished(self, head: Head, text: bytes) -> None:
        self._waiting.append((len(self._snapshots), head, text))
        self._snapshots.append(None)
        if len(self._waiting) == PACK_RUNS:
            self._pack()

    def snapshots(self) -> list[RunSnapshot]:
        if self._waiting:
            self._pack()
        return [snapshot for snapshot in self._snapshots if snapshot is not None]

    def _pack(self) -> None:
        places = _packed([text for _, _, text in self._waiting])
        for (index, head, _), place in zip(self._waiting, places, strict=True):
            run_id, status, success, result_id = head
            self._snapshots[index] = RunSnapshot(run_id, status, success, place, result_id)
        self._waiting.clear()


#: A bulk answer as ``read_bulk`` reads it: each entry's ``_LIVE_FIELDS`` as sent (``Any``:
#: nothing converted, the lenient validators still decide), the rest skipped.
_LiveEntry = msgspec.defstruct("_LiveEntry", [(name, Any, None) for name in _LIVE_FIELDS])
_LIVE_ENTRIES = msgspec.json.Decoder(list[_LiveEntry])  # type: ignore[valid-type]
#: The same answer cut into each entry's JSON text, unparsed.
_ENTRY_TEXTS = msgspec.json.Decoder(list[msgspec.Raw])
