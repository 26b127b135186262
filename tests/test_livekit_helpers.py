"""pytest_cekura.livekit: what a LiveKit agent makes of the metadata Cekura dispatches it with."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
import pytest

from conftest import SENTINEL_KEY
from pytest_cekura import livekit
from pytest_cekura.emulator import Emulator
from pytest_cekura.livekit import CekuraCall, TestProfile, is_cekura_call, parse_cekura_call
from pytest_cekura.models import Run
from pytest_cekura.report import job_metadata

LIVEKIT_V2 = "/test_framework/v1/scenarios-external/run_scenarios_livekit_v2/"
CATALOGUE = """
[[agent]]
id = 42
name = "Pharmacy agent"
livekit_url = "wss://pharmacy.livekit.cloud"
livekit_api_key = "APIxxxxxxxx"
livekit_api_secret = "secret-value"
livekit_agent_name = "pharmacy-agent"
livekit_config = { empty_timeout = 300, voice = { id = "alloy", speed = 1.1 }, tags = ["a", "b"] }

[[test_profile]]
id = 7
name = "Jane"

[test_profile.information]
customer_name = "Jane Doe"
date_of_birth = "1980-02-03"
allergies = ["penicillin"]
"""

# The shapes of cekura-api.md 8.2: REST-wrapped profile, and the SDK tracer's flat one.
REST_PROFILE = {
    "id": 7,
    "name": "Jane",
    "information": {"customer_name": "Jane Doe", "address": {"city": "Leeds"}},
}
FLAT_PROFILE = {"customer_name": "John Doe", "phone": "+15550100"}
JOB_WITH_PROFILE = json.dumps(
    {"scenario_id": 31, "run_id": 90002, "test_profile_data": REST_PROFILE}
)
JOB_WITHOUT_PROFILE = '{"scenario_id": 31, "run_id": 90002}'
ROOM = '{"empty_timeout": 300}'


# --- Real-shaped metadata -----------------------------------------------------------------------


def test_job_with_rest_profile_and_room_config() -> None:
    call = parse_cekura_call(JOB_WITH_PROFILE, ROOM)
    assert call == CekuraCall(
        scenario_id=31,
        run_id=90002,
        test_profile=TestProfile(
            id=7,
            name="Jane",
            information={"customer_name": "Jane Doe", "address": {"city": "Leeds"}},
        ),
        room_config={"empty_timeout": 300},
    )
    assert call.log_fields() == {
        "cekura_scenario_id": 31,
        "cekura_run_id": 90002,
        "cekura_test_profile": "Jane",
    }
    assert str(call) == "scenario_id=31, run_id=90002, test profile 'Jane'"


def test_job_without_profile() -> None:
    call = parse_cekura_call(JOB_WITHOUT_PROFILE)
    assert call is not None
    assert (call.scenario_id, call.run_id, call.test_profile) == (31, 90002, None)
    assert call.room_config == {}
    assert call.log_fields()["cekura_test_profile"] is None
    assert str(call) == "scenario_id=31, run_id=90002"


def test_flat_profile_is_the_information() -> None:
    job = json.dumps({"scenario_id": 31, "run_id": 90002, "test_profile_data": FLAT_PROFILE})
    call = parse_cekura_call(job)
    assert call is not None
    assert call.test_profile == TestProfile(id=None, name=None, information=FLAT_PROFILE)
    assert call.test_profile_name is None


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ({}, TestProfile(None, None, {})),
        (None, None),
        ("Jane", None),
        ([REST_PROFILE], None),
        ({"id": 7, "name": "Jane", "information": None}, TestProfile(7, "Jane", {})),
        ({"id": "7", "name": "", "information": {}}, TestProfile(7, None, {})),
        ({"id": True, "name": 5, "information": {"a": 1}}, TestProfile(None, None, {"a": 1})),
    ],
    ids=["empty", "null", "string", "list", "null-information", "id-as-string", "bad-id-name"],
)
def test_odd_profiles_never_lose_the_call(profile: Any, expected: TestProfile | None) -> None:
    call = parse_cekura_call(
        json.dumps({"scenario_id": 1, "run_id": 2, "test_profile_data": profile})
    )
    assert call is not None
    assert call.test_profile == expected


@pytest.mark.parametrize(
    "job",
    [
        JOB_WITH_PROFILE.encode(),
        bytearray(JOB_WITH_PROFILE.encode()),
        JOB_WITH_PROFILE.encode("utf-16"),  # json.loads detects UTF-16/32 in bytes
        json.loads(JOB_WITH_PROFILE),
        MappingProxyType(json.loads(JOB_WITH_PROFILE)),
        f"  \n{JOB_WITH_PROFILE}\n",
    ],
    ids=["bytes", "bytearray", "utf-16-bytes", "dict", "mapping", "surrounding-whitespace"],
)
def test_other_input_types(job: Any) -> None:
    assert parse_cekura_call(job, ROOM.encode()) == parse_cekura_call(JOB_WITH_PROFILE, ROOM)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("31", 31),
        ("0031", 31),
        (31.0, 31),
        ("9" * 19, int("9" * 19)),
    ],
)
def test_int_like_ids(value: Any, expected: int) -> None:
    call = parse_cekura_call({"scenario_id": value, "run_id": value})
    assert call is not None
    assert call.scenario_id == call.run_id == expected
    assert type(call.scenario_id) is int


# --- Not a Cekura call --------------------------------------------------------------------------

NOT_A_CEKURA_CALL: list[Any] = [
    None,
    "",
    "   ",
    b"",
    "{}",
    "null",
    "[]",
    '[{"scenario_id": 31, "run_id": 90002}]',
    '"{\\"scenario_id\\": 31, \\"run_id\\": 90002}"',  # double-encoded: a string, not an object
    "31",
    "true",
    "not json",
    '{"scenario_id": 31, "run_id": 90002',  # truncated
    "{'scenario_id': 31, 'run_id': 90002}",  # Python repr, not JSON
    "\ufeff" + JOB_WITHOUT_PROFILE,  # a BOM in a str is invalid JSON
    b"\xff\xfe\xfd",
    b'{"scenario_id": 31, "run_id": 90002, "x": "\xff"}',
    "[" * 100_000 + "]" * 100_000,  # deeper than the interpreter's stack
    '{"scenario_id": ' + "1" * 5000 + ', "run_id": 1}',  # past int's digit limit
    '{"run_id": 90002}',
    '{"scenario_id": 31}',
    '{"scenario_id": null, "run_id": 90002}',
    '{"scenario_id": true, "run_id": 90002}',
    '{"scenario_id": 31, "run_id": false}',
    '{"scenario_id": 31.5, "run_id": 90002}',
    '{"scenario_id": NaN, "run_id": 90002}',
    '{"scenario_id": Infinity, "run_id": 90002}',
    '{"scenario_id": -31, "run_id": 90002}',
    '{"scenario_id": 0, "run_id": 90002}',
    '{"scenario_id": "-31", "run_id": 90002}',
    '{"scenario_id": "+31", "run_id": 90002}',
    '{"scenario_id": " 31", "run_id": 90002}',
    '{"scenario_id": "3_1", "run_id": 90002}',
    '{"scenario_id": "31.0", "run_id": 90002}',
    '{"scenario_id": "\u0663\u0661", "run_id": 90002}',  # Arabic-Indic digits
    '{"scenario_id": "", "run_id": 90002}',
    '{"scenario_id": [31], "run_id": 90002}',
    '{"scenario_id": {"id": 31}, "run_id": 90002}',
    '{"scenario_id": "' + "9" * 5000 + '", "run_id": 1}',
    {"scenario_id": "31"},
    {},
    31,
    3.1,
    ["scenario_id", "run_id"],
    object(),
    {"scenario_id", "run_id"},
]


@pytest.mark.parametrize("job", NOT_A_CEKURA_CALL, ids=range(len(NOT_A_CEKURA_CALL)))
def test_not_a_cekura_call(job: Any) -> None:
    assert parse_cekura_call(job, ROOM) is None
    assert is_cekura_call(job) is False


def test_is_cekura_call() -> None:
    assert is_cekura_call(JOB_WITH_PROFILE) is True
    assert is_cekura_call(JOB_WITHOUT_PROFILE.encode()) is True


# --- Room metadata ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "room",
    [None, "", " ", b"", "null", "[]", '"x"', "300", "not json", '{"a": ', b"\xff", 5, object()],
)
def test_unreadable_room_metadata_is_an_empty_config(room: Any) -> None:
    call = parse_cekura_call(JOB_WITHOUT_PROFILE, room)
    assert call is not None
    assert call.room_config == {}
    assert isinstance(call.room_config, MappingProxyType)


def test_room_metadata_as_bytes_and_dict() -> None:
    assert parse_cekura_call(JOB_WITHOUT_PROFILE, b'{"empty_timeout": 300}') == parse_cekura_call(
        JOB_WITHOUT_PROFILE, {"empty_timeout": 300}
    )


# --- Immutability -------------------------------------------------------------------------------


def test_call_is_read_only_all_the_way_down() -> None:
    room = '{"voice": {"id": "alloy"}, "tags": ["a", {"b": 1}]}'
    call = parse_cekura_call(JOB_WITH_PROFILE, room)
    assert call is not None
    assert call.test_profile is not None
    with pytest.raises(AttributeError):
        call.run_id = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        call.test_profile.name = "Eve"  # type: ignore[misc]
    with pytest.raises(TypeError):
        call.room_config["empty_timeout"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        call.room_config["voice"]["id"] = "echo"
    with pytest.raises(AttributeError):
        call.room_config["tags"].append("c")
    with pytest.raises(TypeError):
        call.room_config["tags"][1]["b"] = 2
    with pytest.raises(TypeError):
        call.test_profile.information["address"]["city"] = "York"
    # Read-only, yet still JSON with one hint.
    assert json.loads(json.dumps(call.room_config, default=dict)) == json.loads(room)


def test_callers_mappings_are_copied() -> None:
    job: dict[str, Any] = {"scenario_id": 1, "run_id": 2, "test_profile_data": {"name": "A"}}
    room: dict[str, Any] = {"voice": {"id": "alloy"}}
    call = parse_cekura_call(job, room)
    job["test_profile_data"]["name"] = "B"
    room["voice"]["id"] = "echo"
    assert call is not None
    assert call.test_profile is not None
    assert call.test_profile.information == {"name": "A"}
    assert call.room_config == {"voice": {"id": "alloy"}}


def test_misbehaving_mappings_never_raise() -> None:
    class Exploding(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            raise RuntimeError("boom")

        def __iter__(self) -> Iterator[str]:
            raise RuntimeError("boom")

        def __len__(self) -> int:
            return 1

    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    assert parse_cekura_call(Exploding()) is None
    # The ids make it a Cekura call; an unreadable profile or config does not undo that.
    call = parse_cekura_call({"scenario_id": 1, "run_id": 2, "test_profile_data": cyclic}, cyclic)
    assert call == CekuraCall(1, 2, None, {})
    call = parse_cekura_call({"scenario_id": 1, "run_id": 2, "test_profile_data": Exploding()})
    assert call == CekuraCall(1, 2, None, {})


def test_test_profile_is_not_collected_by_pytest() -> None:
    assert TestProfile.__test__ is False


# --- End to end: what the emulator hands an agent -----------------------------------------------


def start_livekit_run(emulator: Emulator, **body: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{emulator.url}{LIVEKIT_V2}",
        json={"scenarios": [{"scenario": 30}], "agent": 42, **body},
        headers={"X-CEKURA-API-KEY": SENTINEL_KEY},
    )
    assert response.status_code < 300, response.text
    [run] = emulator.runs
    return run


def test_emulator_dispatch_with_profile(make_emulator: Callable[[str], Emulator]) -> None:
    run = start_livekit_run(make_emulator(CATALOGUE), test_profile_ids=[7])
    assert isinstance(run["job_metadata"], str)
    assert isinstance(run["room_metadata"], str)
    call = parse_cekura_call(run["job_metadata"], run["room_metadata"])
    assert call == CekuraCall(
        scenario_id=30,
        run_id=run["id"],
        test_profile=TestProfile(
            id=7,
            name="Jane",
            information={
                "customer_name": "Jane Doe",
                "date_of_birth": "1980-02-03",
                "allergies": ("penicillin",),
            },
        ),
        room_config={
            "empty_timeout": 300,
            "voice": {"id": "alloy", "speed": 1.1},
            "tags": ("a", "b"),
        },
    )
    # The line an engineer greps the agent's logs for is the one the failing test's report shows.
    assert str(call) == job_metadata(Run.model_validate(run))
    assert str(call) == f"scenario_id=30, run_id={run['id']}, test profile 'Jane'"


def test_emulator_dispatch_without_profile(make_emulator: Callable[[str], Emulator]) -> None:
    run = start_livekit_run(make_emulator(CATALOGUE))
    call = parse_cekura_call(run["job_metadata"], run["room_metadata"])
    assert call is not None
    assert (call.scenario_id, call.run_id, call.test_profile) == (30, run["id"], None)
    assert call.room_config["empty_timeout"] == 300
    assert str(call) == job_metadata(Run.model_validate(run))


def test_emulator_dispatch_for_an_agent_without_livekit_config(
    make_emulator: Callable[[str], Emulator],
) -> None:
    run = start_livekit_run(make_emulator(""))  # agent 42 unlisted: no LiveKit Config
    call = parse_cekura_call(run["job_metadata"], run["room_metadata"])
    assert call is not None
    assert call.room_config == {}


# --- Dependency-free ----------------------------------------------------------------------------


def run_python(code: str) -> set[str]:
    """The whitespace-separated words a fresh interpreter prints running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_importing_the_module_imports_no_third_party_package() -> None:
    modules = run_python("import sys, pytest_cekura.livekit; print(*sys.modules)")
    assert "pytest_cekura.livekit" in modules
    assert not {"pytest", "_pytest", "pytest_cekura.plugin", "httpx", "pydantic"} & modules


def test_the_module_needs_only_the_standard_library() -> None:
    # Loaded from its file alone, so nothing the package __init__ might import one day can
    # hide an import the module itself would add.
    path = str(Path(livekit.__file__))
    added = run_python(
        "import importlib.util, sys\n"
        "before = set(sys.modules)\n"
        f"spec = importlib.util.spec_from_file_location('cekura_livekit', {path!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['cekura_livekit'] = module\n"
        "spec.loader.exec_module(module)\n"
        'assert module.parse_cekura_call(b\'{"scenario_id": 1, "run_id": 2}\').run_id == 2\n'
        "print(*(set(sys.modules) - before))\n"
    )
    assert "cekura_livekit" in added
    third_party = {
        name
        for name in added - {"cekura_livekit"}
        if name.partition(".")[0] not in sys.stdlib_module_names
    }
    assert third_party == set()


# --- Fuzz ---------------------------------------------------------------------------------------
# hypothesis is not a dependency of this project, so the corpus is generated from a fixed seed:
# the same odd inputs on every run, and a failure names the seed and case to replay.

KEYS = ["scenario_id", "run_id", "test_profile_data", "information", "id", "name", "", "x"]


def odd_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(13 if depth < 4 else 9)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 31, 2**63, -(2**70), 10**30])
    if kind == 3:
        return rng.choice([0.0, -0.0, 31.0, 31.5, 1e300, -1e-300, math.nan, math.inf, -math.inf])
    if kind == 4:
        return rng.choice(["", "31", "-1", "0", " 7", "٣", "\x00", "\ud800", "1e3", "Jane"])
    if kind == 5:
        return "".join(chr(rng.randrange(0x30000)) for _ in range(rng.randrange(8)))
    if kind == 6:
        return str(rng.randrange(10**25))
    if kind == 7:
        return rng.choice(["{}", "[]", '{"scenario_id": 1, "run_id": 2}', "null"])
    if kind == 8:
        return rng.randrange(1, 10**6)
    if kind in (9, 10):
        return {rng.choice(KEYS): odd_value(rng, depth + 1) for _ in range(rng.randrange(5))}
    return [odd_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def odd_metadata(rng: random.Random) -> Any:
    job: dict[str, Any] = {k: odd_value(rng) for k in KEYS if rng.random() < 0.5}
    if rng.random() < 0.5:  # bias towards ids that parse, so the profile paths run too
        job.update(scenario_id=rng.randrange(1, 99), run_id=str(rng.randrange(1, 99)))
    value = job if rng.random() < 0.8 else odd_value(rng)
    form = rng.randrange(7)
    if form == 0:
        return value
    text = json.dumps(value, ensure_ascii=rng.random() < 0.5)
    if form == 1:
        return text
    if form == 2:
        return text.encode("utf-8", "surrogatepass")
    if form == 3:  # truncated
        return text[: rng.randrange(len(text) + 1)]
    if form == 4:  # one character replaced
        i = rng.randrange(len(text))
        return text[:i] + rng.choice('{}[]",:\\\x00\ufeff ') + text[i + 1 :]
    if form == 5:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(32)))
    return text.encode(rng.choice(["utf-16", "utf-32", "latin-1"]), "replace")


def check_call(call: CekuraCall | None) -> None:
    if call is None:
        return
    for number in (call.scenario_id, call.run_id):
        assert type(number) is int
        assert number > 0
    assert isinstance(call.room_config, MappingProxyType)
    profile = call.test_profile
    if profile is not None:
        assert isinstance(profile.information, MappingProxyType)
        assert profile.id is None or (type(profile.id) is int and profile.id > 0)
        assert profile.name is None or (isinstance(profile.name, str) and profile.name)
    fields = call.log_fields()
    assert set(fields) == {"cekura_scenario_id", "cekura_run_id", "cekura_test_profile"}
    assert str(call).startswith(f"scenario_id={call.scenario_id}, run_id={call.run_id}")


FUZZ_SEED = 20240611


def test_fuzz_never_raises() -> None:
    rng = random.Random(FUZZ_SEED)
    parsed = 0
    for case in range(4000):
        job, room = odd_metadata(rng), odd_metadata(rng)
        try:
            call = parse_cekura_call(job, room)
            check_call(call)
            assert is_cekura_call(job) is (call is not None)
        except BaseException as exc:
            raise AssertionError(f"seed {FUZZ_SEED}, case {case}: {job!r}, {room!r}") from exc
        parsed += call is not None
    # The corpus must reach the parsing paths, not only the early "not a call" exits.
    assert parsed > 400
