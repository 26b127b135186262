"""The published JSON Schemas (docs/schemas/) are the models' own, and agree with the loader."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_cekura.emulator import CatalogueError, parse_fault
from pytest_cekura.emulator.catalogue import parse_catalogue
from pytest_cekura.emulator.fault_actions import ACTIONS
from pytest_cekura.emulator.schemas import main, render, schema_documents

SCHEMAS = Path(__file__).parents[2] / "docs" / "schemas"

EXAMPLE = """
[[scenario]]
id = 31
name = "Billing dispute"
outcome = "flaky"
success_probability = 0.5
duration_s = 120
evaluation_delay_s = 20
agent = 42

[[agent]]
id = 42
name = "Pharmacy agent"
provider = "livekit"
livekit_url = "wss://pharmacy.livekit.cloud"
livekit_agent_name = "pharmacy-agent"
livekit_config = { empty_timeout = 300 }
livekit_credentials = "project"

[[test_profile]]
id = 7
information = { customer_name = "Jane Doe" }

[[fault]]
match = "start"
action = "error_after"
status = 502

[[fault]]
match = "any"
action = "never_finish"
scenario_ids = [31]
"""


@functools.cache  # building and checking a schema takes ~0.1 s
def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = schema_documents()[name]
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("name", sorted(schema_documents()))
def test_published_schema_is_up_to_date(name: str) -> None:
    published = (SCHEMAS / name).read_text(encoding="utf-8")
    assert published == render(schema_documents()[name]), (
        f"docs/schemas/{name} is out of date; run: python -m pytest_cekura.emulator.schemas "
        "docs/schemas"
    )


def test_generator_writes_every_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 0
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == ["catalogue.schema.json", "faults.schema.json", "toml-suite.schema.json"]
    assert capsys.readouterr().out.count("schema.json") == 3


def test_catalogue_schema_accepts_what_the_loader_accepts() -> None:
    data = tomllib.loads(EXAMPLE)
    parse_catalogue(data)  # the loader accepts it ...
    validator("catalogue.schema.json").validate(data)  # ... and so does an editor


@pytest.mark.parametrize(
    "text",
    [
        '[[scenario]]\nid = 31\noutcom = "fail"\n',  # a misspelt key
        '[[scenario]]\nid = 31\noutcome = "maybe"\n',
        "[[scenario]]\nid = 0\n",
        '[[agent]]\nid = 4\nprovider = "livekt"\n',
        "[[agent]]\nid = 4\nexists = 0\n",
        '[[test_profile]]\nid = 7\ninformation = "Jane"\n',
        "[[scenarios]]\nid = 31\n",  # a misspelt table
        '[[fault]]\nmatch = "start"\naction = "error_after"\ndelay_s = 1\n',  # another action's
        '[[fault]]\nmatch = "result"\naction = "omit_runs"\nomit = 1\n',  # a match it cannot use
    ],
)
def test_catalogue_schema_rejects_what_the_loader_rejects(text: str) -> None:
    data = tomllib.loads(text)
    with pytest.raises(CatalogueError):
        parse_catalogue(data)
    assert not validator("catalogue.schema.json").is_valid(data)


# Rules on both sides of every action's checks the schema can express (types, ranges, which
# options and matches each action takes); whether exactly one of omit / omit_ids is given and
# which strings make a header are left to the loader.
RULES: list[tuple[dict[str, Any], bool]] = [
    ({"match": "start", "action": "error_before"}, True),
    ({"match": "start", "action": "error_before", "status": 200}, False),
    ({"match": "start", "action": "error_after", "times": 0, "status": 599}, True),
    ({"match": "start", "action": "error_after", "times": -1}, False),
    ({"match": "bulk", "action": "drop_before", "drop_mode": "reset"}, True),
    ({"match": "bulk", "action": "drop_after", "drop_mode": "partial"}, True),
    ({"match": "bulk", "action": "drop_after", "drop_mode": "slam"}, False),
    ({"match": "any", "action": "rate_limit", "retry_after": 2, "retry_after_ms": 1500}, True),
    ({"match": "any", "action": "rate_limit"}, False),
    ({"match": "any", "action": "slow", "delay_s": 0.5}, True),
    ({"match": "any", "action": "slow", "delay_s": 3601}, False),
    ({"match": "run", "action": "malformed_json"}, True),
    ({"match": "run", "action": "malformed_json", "status": 500}, False),
    ({"match": "results", "action": "unknown_status", "scenario_ids": [31]}, True),
    ({"match": "agent", "action": "unknown_status"}, False),
    ({"match": "bulk", "action": "omit_runs", "omit_ids": [90001]}, True),
    ({"match": "bulk", "action": "omit_runs", "omit": 0}, False),
    ({"match": "rerun", "action": "duplicate_runs"}, True),
    ({"match": "start", "action": "extra_runs", "times": 2}, True),
    ({"match": "scenario", "action": "extra_runs"}, False),
    ({"match": "any", "action": "never_finish", "scenario_ids": [31, 35]}, True),
    ({"match": "any", "action": "never_finish", "scenario_ids": [31], "times": 1}, False),
    ({"match": "any", "action": "never_finish", "scenario_ids": []}, False),
    ({"match": "start", "action": "explode"}, False),
]


def test_rules_cover_every_action() -> None:
    assert {rule["action"] for rule, valid in RULES if valid} == set(ACTIONS)


@pytest.mark.parametrize(("rule", "valid"), RULES, ids=[str(rule) for rule, _ in RULES])
def test_faults_schema_agrees_with_parse_fault(rule: dict[str, Any], valid: bool) -> None:
    schema = validator("faults.schema.json")
    assert schema.is_valid(rule) is valid
    assert schema.is_valid([rule]) is valid  # POST /_emulator/faults takes a list too
    if valid:
        assert parse_fault(rule).as_dict()["action"] == rule["action"]
    else:
        with pytest.raises(CatalogueError):
            parse_fault(rule)
