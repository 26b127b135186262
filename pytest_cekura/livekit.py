"""Recognise a Cekura test call inside a LiveKit agent, from the metadata it was dispatched with.

For each run Cekura dispatches the agent with job metadata
``{"scenario_id": int, "run_id": int, "test_profile_data"?: {...}}`` and puts the agent's
"LiveKit Config" JSON into the room metadata (docs/agent-helpers.md)::

    from pytest_cekura.livekit import parse_cekura_call

    call = parse_cekura_call(ctx.job.metadata, ctx.job.room.metadata or ctx.room.metadata)
    if call is not None:
        logger.info("cekura call: %s", call, extra=call.log_fields())

This module runs inside production agents, on every real customer call, so it imports nothing
outside the standard library and never raises: anything it cannot read as a Cekura call is
"not a Cekura call" (``None``), and a room config or test profile it cannot read is left out
rather than failing the whole call.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, TypeAlias, TypeVar

__all__ = ["CekuraCall", "Metadata", "TestProfile", "is_cekura_call", "parse_cekura_call"]

#: What LiveKit hands an agent (``str``), what some transports carry (``bytes``), or JSON an
#: agent has already decoded.
Metadata: TypeAlias = str | bytes | bytearray | Mapping[str, Any] | None

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_T = TypeVar("_T")


@dataclass(frozen=True)
class TestProfile:
    """The test profile a run was started with: who the simulated caller claims to be.

    ``id`` and ``name`` are ``None`` when Cekura sent only the bare information (the shape
    its SDK tracer example uses) instead of the ``{"id", "name", "information"}`` REST shape.
    ``information`` is read-only all the way down: objects are read-only mappings and arrays
    are tuples; ``json.dumps(profile.information, default=dict)`` turns it back into JSON.
    """

    # The name starts with "Test"; without this pytest would try to collect it from test modules.
    __test__: ClassVar[bool] = False

    id: int | None
    name: str | None
    information: Mapping[str, Any]


@dataclass(frozen=True)
class CekuraCall:
    """A call Cekura placed to test the agent, as opposed to a real customer's.

    ``room_config`` is the agent's "LiveKit Config" JSON, read-only like
    ``TestProfile.information``; it is empty when the room metadata is absent or not a JSON
    object.
    """

    scenario_id: int
    run_id: int
    test_profile: TestProfile | None
    room_config: Mapping[str, Any]

    @property
    def test_profile_name(self) -> str | None:
        return self.test_profile.name if self.test_profile is not None else None

    def log_fields(self) -> dict[str, Any]:
        """Fields for structured logging (``logger.info(..., extra=call.log_fields())``).

        Prefixed, so they cannot collide with ``LogRecord`` attributes or the agent's own
        fields; ``cekura_test_profile`` is the profile's name, as pytest-cekura reports it.
        """
        return {
            "cekura_scenario_id": self.scenario_id,
            "cekura_run_id": self.run_id,
            "cekura_test_profile": self.test_profile_name,
        }

    def __str__(self) -> str:
        # Word for word what pytest-cekura prints after "job metadata:" in a failing test's
        # report, so the line a test names can be grepped for in the agent's logs.
        name = self.test_profile_name
        shown = f", test profile {name!r}" if name else ""
        return f"scenario_id={self.scenario_id}, run_id={self.run_id}{shown}"


def parse_cekura_call(job_metadata: Metadata, room_metadata: Metadata = None) -> CekuraCall | None:
    """Read the job and room metadata of a LiveKit job; ``None`` if it is not a Cekura call.

    A Cekura call is job metadata holding a JSON object with positive integer ``scenario_id``
    and ``run_id`` (``31`` or ``"31"``; not ``true``, ``31.5``, ``-31`` or ``0``). Never
    raises, whatever it is given.
    """
    try:
        return _parse_call(job_metadata, room_metadata)
    except Exception:
        # Every failure the parser knows of is handled where it happens. This guard is for
        # Mapping inputs: their methods are the caller's code and may raise anything, and an
        # agent must not drop a customer's call over metadata it was only curious about.
        return None


def is_cekura_call(job_metadata: Metadata) -> bool:
    """Whether a job's metadata marks it as a Cekura test call; never raises."""
    return parse_cekura_call(job_metadata) is not None


def _parse_call(job_metadata: object, room_metadata: object) -> CekuraCall | None:
    job = _load_object(job_metadata)
    if job is None:
        return None
    scenario_id = _positive_int(job.get("scenario_id"))
    run_id = _positive_int(job.get("run_id"))
    if scenario_id is None or run_id is None:
        return None
    return CekuraCall(
        scenario_id=scenario_id,
        run_id=run_id,
        test_profile=_isolated(lambda: _test_profile(job.get("test_profile_data")), None),
        room_config=_isolated(lambda: _room_config(room_metadata), _EMPTY),
    )


def _isolated(read: Callable[[], _T], fallback: _T) -> _T:
    # The ids alone make a call a Cekura call: a test profile or room config that cannot be
    # read (a cyclic or misbehaving Mapping from the caller) must not turn it into a
    # customer's call.
    try:
        return read()
    except Exception:
        return fallback


def _room_config(metadata: object) -> Mapping[str, Any]:
    room = _load_object(metadata)
    return _freeze_object(room) if room is not None else _EMPTY


def _load_object(metadata: object) -> Mapping[Any, Any] | None:
    """The JSON object in ``metadata``, or ``None`` for anything else."""
    if isinstance(metadata, Mapping):
        return metadata
    if not isinstance(metadata, str | bytes | bytearray) or not metadata.strip():
        return None
    try:
        value = json.loads(metadata)
    except (ValueError, RecursionError):
        # ValueError covers bad JSON, undecodable bytes and integers too long to convert;
        # RecursionError, arrays nested deeper than the interpreter's stack.
        return None
    return value if isinstance(value, dict) else None


def _positive_int(value: object) -> int | None:
    # bool is an int subclass, and "scenario_id": true is a bug, not scenario 1.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = int(value)
    elif isinstance(value, float):
        # JSON writers in other languages may send 31.0 for an integer id.
        if not math.isfinite(value) or not value.is_integer():
            return None
        number = int(value)
    elif isinstance(value, str):
        # Only ASCII digits: int() would also take " 31", "3_1", "+31" and "٣١".
        if not (value.isascii() and value.isdigit()):
            return None
        try:
            number = int(value)
        except ValueError:  # longer than sys.get_int_max_str_digits()
            return None
    else:
        return None
    # Cekura's ids start at 1; 0 or below is a placeholder, not a run to look for.
    return number if number > 0 else None


def _test_profile(data: object) -> TestProfile | None:
    if not isinstance(data, Mapping):
        return None
    information = data.get("information")
    if isinstance(information, Mapping) or ("information" in data and information is None):
        name = data.get("name")
        return TestProfile(
            id=_positive_int(data.get("id")),
            name=name if isinstance(name, str) and name else None,
            information=_freeze_object(information) if information is not None else _EMPTY,
        )
    # The flat shape: the whole object is the information, and there is no id or name.
    return TestProfile(id=None, name=None, information=_freeze_object(data))


def _freeze_object(data: Mapping[Any, Any]) -> Mapping[str, Any]:
    # A copy as well as a view: a Mapping passed in by the caller stays theirs to change.
    return MappingProxyType({key: _freeze(value) for key, value in data.items()})


def _freeze(value: object) -> object:
    if isinstance(value, Mapping):
        return _freeze_object(value)
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    return value
