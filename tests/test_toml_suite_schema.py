"""The TOML suite model (suite_toml.py): its published JSON Schema and the loader agree on a
file's shape; the schema also tells editors the values the marker accepts."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_cekura.emulator.schemas import render, schema_documents
from pytest_cekura.markers import _KEYWORDS as MARKER_KEYWORDS
from pytest_cekura.suite_toml import json_schema
from pytest_cekura.suites import SuiteError, parse_suite

PUBLISHED = Path(__file__).parents[1] / "docs" / "schemas" / "toml-suite.schema.json"

GOOD = """
[[test]]
name = "refill flow"
scenarios = [30, 31]
frequency = 3
min_success_rate = 0.8
test_profile = 7

[[test]]
name = "german preview"
scenarios = [30]
provider = "livekit"
concurrency_limit = 2
mock_tool_names = ["check_inventory"]
livekit_data = { agent_name = "pharmacy-pr-12", config = { locale = "de-DE" } }
publish_data_message = { locale = "de-DE" }
gates = { Latency = "p95 <= 1200", Sentiment = { in = ["positive"] } }
"""


@functools.cache
def validator() -> jsonschema.Draft202012Validator:
    schema = schema_documents()["toml-suite.schema.json"]
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_published_schema_is_the_models() -> None:
    assert PUBLISHED.read_text(encoding="utf-8") == render(
        schema_documents()["toml-suite.schema.json"]
    ), "run: python -m pytest_cekura.emulator.schemas docs/schemas"


def test_every_marker_keyword_is_a_key_of_an_entry() -> None:
    entry = json_schema()["$defs"]["TomlEntry"]
    assert list(entry["properties"]) == ["name", "scenarios", *MARKER_KEYWORDS]
    assert entry["required"] == ["name", "scenarios"]
    assert entry["additionalProperties"] is False


def test_schema_accepts_what_the_loader_accepts() -> None:
    data = tomllib.loads(GOOD)
    assert [entry.name for entry in parse_suite(data)] == ["refill flow", "german preview"]
    validator().validate(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[test]]\nname = "a"\nscenarios = [30]\nfrequncy = 2\n', "unknown key 'frequncy'"),
        ("[[test]]\nscenarios = [30]\n", "missing required key 'name'"),
        ('[[test]]\nname = "a"\n', "missing required key 'scenarios'"),
        ('[[test]]\nname = "a"\nscenarios = 30\n', "scenarios = 30 is invalid"),
        ('[[test]]\nname = "a::b"\nscenarios = [30]\n', "leave out '::'"),
        ('[[test]]\nname = " "\nscenarios = [30]\n', "use a non-empty string"),
        ("[[test]]\nname = 5\nscenarios = [30]\n", "name = 5 is invalid"),
        ('[test]\nname = "a"\nscenarios = [30]\n', "[test] is a single table"),
        ('[[tests]]\nname = "a"\nscenarios = [30]\n', "unknown top-level table 'tests'"),
        ('frequency = 2\n[[test]]\nname = "a"\nscenarios = [30]\n', "outside any entry"),
        ('test = [{ name = "a", scenarios = [30] }, 3]\n', "3 is not a table of keys"),
    ],
)
def test_schema_rejects_the_shapes_the_loader_rejects(text: str, message: str) -> None:
    data = tomllib.loads(text)
    with pytest.raises(SuiteError) as caught:
        parse_suite(data, source="x")
    assert message in str(caught.value)
    assert not validator().is_valid(data)


@pytest.mark.parametrize(
    "entry",
    [
        "frequency = 0",
        "min_success_rate = 1.5",
        'provider = "zoom"',
        'agent = "42"',
        "scenarios = []",
        "scenarios = [30, 30]",
        'livekit_data = { api_secret = "x" }',
        "gates = { Latency = 5 }",
    ],
)
def test_schema_flags_values_the_marker_refuses_at_setup(entry: str) -> None:
    # The loader lets the value through (the marker errors that entry alone, at setup:
    # test_toml_suites.py); an editor flags it while it is typed.
    text = '[[test]]\nname = "a"\nscenarios = [30]\n'
    if entry.startswith("scenarios"):
        text = f'[[test]]\nname = "a"\n{entry}\n'
    else:
        text += entry + "\n"
    data = tomllib.loads(text)
    assert len(parse_suite(data)) == 1
    assert not validator().is_valid(data)


def test_a_name_used_twice_is_named_before_a_later_bad_entry() -> None:
    data: dict[str, Any] = {
        "test": [
            {"name": "a", "scenarios": [30]},
            {"name": "a", "scenarios": [31]},
            {"name": "b", "scenarios": 32},
        ]
    }
    with pytest.raises(SuiteError, match=r'^x: test\[2\] \("a"\): name "a" is already used'):
        parse_suite(data, source="x")
    data["test"][1]["name"] = "c"
    with pytest.raises(SuiteError, match=r'^x: test\[3\] \("b"\): scenarios = 32 is invalid'):
        parse_suite(data, source="x")
