"""Contract (d): every ``example`` in the subset is read the way the plugin would read it.

Each example is handled by exactly one check, chosen by where it sits:

- a property's ``example`` value validates against that property's schema;
- a run list's ``examples`` (the run stubs of a run-starting answer) parse as ``Run`` and
  ``RunSnapshot`` and validate against the stub schema;
- a result answer's examples (result detail, the email runner's answer) parse as ``Result``,
  their runs as ``Run``. The result detail example is descriptive (``"id": "integer"``), so its
  type names are replaced by a value of that type first;
- an agent request example (a full or partial agent as the service stores it) is read by
  ``AgentSettings.from_api``;
- every other example (run-starting, scenario and test-profile bodies; test-profile answers)
  validates against its schema.

The last test fails on an example no check claims, so a new example is one change away from
being checked.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_cekura.models import AgentSettings, Result, Run
from pytest_cekura.snapshot import RunSnapshot

from .spec import Contract, Direction, contract, load_raw, resolve

RAW = load_raw()
#: Type names the descriptive examples use, and a value of that type.
PLACEHOLDERS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"^integer\b"), 1),
    (re.compile(r"^(number|float)\b"), 1.5),
    (re.compile(r"^boolean\b"), True),
    (re.compile(r"^datetime\b"), "2026-08-01T12:00:00Z"),
    (re.compile(r"^array\b"), []),
    (re.compile(r"^object\b"), {}),
]


def typed(value: Any) -> Any:
    """The descriptive example with each type name replaced by a value of that type."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    if isinstance(value, str):
        for pattern, replacement in PLACEHOLDERS:
            if pattern.match(value):
                return replacement
    return value


def example_locations() -> list[str]:
    """JSON pointers of every ``example`` / ``examples`` in the raw subset."""
    found: list[str] = []

    def walk(node: Any, pointer: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"
                # Under "properties" the keys are field names: a field may be called "example".
                if key in ("example", "examples") and pointer.rsplit("/", 1)[-1] != "properties":
                    found.append(here)
                else:
                    walk(value, here)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{pointer}/{index}")

    walk(RAW, "")
    return found


def parent(pointer: str) -> str:
    return pointer.rsplit("/", 1)[0]


def values_at(pointer: str) -> list[Any]:
    """The example values at ``pointer``: one for ``example``, each for ``examples``."""
    node = resolve(RAW, pointer)
    if pointer.endswith("/example"):
        return [node]
    if isinstance(node, list):  # JSON Schema 2020-12 examples: a list of values
        return list(node)
    return [entry["value"] for entry in node.values()]  # OpenAPI examples: name -> {value}


def kind(pointer: str) -> str:
    pointer = pointer.replace("~1", "/").replace("~0", "~")  # match on the plain path
    if pointer.endswith("/example"):
        return "property"
    if pointer.endswith("/properties/runs/examples"):
        return "run-stubs"
    if "/responses/" in pointer and re.search(r"/results(-external)?/\{id\}/", pointer):
        return "result"
    if "/responses/" in pointer and "run_scenarios_email" in pointer:
        return "result"
    if "/requestBody/" in pointer and "/aiagents/" in pointer:
        return "agent"
    return "schema"


LOCATIONS = example_locations()


def test_there_are_examples_of_every_kind() -> None:
    kinds = {kind(pointer) for pointer in LOCATIONS}
    assert kinds == {"property", "run-stubs", "result", "agent", "schema"}
    assert len(LOCATIONS) > 200


@pytest.mark.parametrize("pointer", [p for p in LOCATIONS if kind(p) == "property"])
def test_property_example_matches_its_schema(pointer: str) -> None:
    spec = contract()
    [value] = values_at(pointer)
    assert spec.schema_errors(parent(pointer), value, "response") == []


@pytest.mark.parametrize("pointer", [p for p in LOCATIONS if kind(p) == "run-stubs"])
def test_run_stub_examples_parse_as_runs(pointer: str) -> None:
    spec = contract()
    stubs = values_at(pointer)
    assert stubs
    for stub in stubs:
        run = Run.model_validate(stub)
        assert (run.id, run.scenario, run.status) == (stub["id"], stub["scenario"], "pending")
        assert RunSnapshot.parse(stub).id == stub["id"]
        assert spec.schema_errors(f"{parent(pointer)}/items", stub, "response") == []


@pytest.mark.parametrize("pointer", [p for p in LOCATIONS if kind(p) == "result"])
def test_result_examples_parse_as_results(pointer: str) -> None:
    for example in values_at(pointer):
        value = typed(example)
        result = Result.model_validate(value)
        assert result.id == value["id"]
        assert result.status == str(value["status"]).lower()
        assert len(result.runs) == len(value["runs"])
        for run in result.runs:
            assert isinstance(run, Run)
        if "success_runs_count" in value:
            assert result.success_runs_count == value["success_runs_count"]


@pytest.mark.parametrize("pointer", [p for p in LOCATIONS if kind(p) == "agent"])
def test_agent_examples_are_read_by_agent_settings(pointer: str) -> None:
    for example in values_at(pointer):
        settings = AgentSettings.from_api(5, example)
        assert settings.id == 5
        assert settings.name == example.get("agent_name", example.get("name", "agent 5"))


@pytest.mark.parametrize("pointer", [p for p in LOCATIONS if kind(p) == "schema"])
def test_other_examples_match_their_schema(pointer: str) -> None:
    spec: Contract = contract()
    direction: Direction = "request" if "/requestBody/" in pointer else "response"
    schema = f"{parent(pointer)}/schema"
    problems = []
    for example in values_at(pointer):
        problems += spec.schema_errors(schema, example, direction)
    assert problems == []
