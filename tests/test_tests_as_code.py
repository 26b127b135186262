"""Tests as Code: cekura.tests.json suites collected as tests, validated, priced and run."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from conftest import Suite

CATALOGUE = """
[[case]]
key = "refund-denied"
outcome = "fail"
duration_s = 5

[[case]]
key = "Angry caller"
outcome = "pass"
duration_s = 5

[[case]]
key = "refund-ok"
duration_s = 5
"""


def case(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "instructions": f"You call about {name}.", **fields}


def document(*cases: dict[str, Any], **top: Any) -> str:
    return json.dumps(
        {"version": "1", "suite": {"name": "Refunds"}, "scenarios": list(cases), **top}
    )


FOUR = document(
    case("Refund ok", key="refund-ok", metrics=["expected_outcome"]),
    case("Refund denied", key="refund-denied"),
    case("Angry caller"),
    case("Unknown metric", key="bad-metric", metrics=["no_such_metric"]),
)


def write(project: Suite, text: str, name: str = "cekura.tests.json") -> None:
    # pytester.makefile would make "cekura.json" of "cekura.tests" (with_suffix).
    project.pytester.path.joinpath(name).write_text(text, encoding="utf-8")


@pytest.fixture
def project(make_suite: Callable[[str], Suite]) -> Suite:
    suite = make_suite(CATALOGUE)
    suite.pytester.makeini("[pytest]\ncekura_agent = 42\n")
    return suite


def test_each_case_is_a_test_named_by_its_key(project: Suite) -> None:
    write(project, FOUR)
    project.pytester.makefile(".cekura.json", smoke=document(case("Smoke")))
    result = project.run("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "cekura.tests.json::refund-ok",
            "cekura.tests.json::refund-denied",
            "cekura.tests.json::Angry caller",
            "cekura.tests.json::bad-metric",
            "smoke.cekura.json::Smoke",
        ]
    )
    # --collect-only never submits.
    assert project.emulator.count("POST") == 0
    selected = project.run("--collect-only", "-q", "-k", "refund")
    selected.stdout.fnmatch_lines(["*2/5 tests collected (3 deselected)*"])


def test_a_bad_case_errors_alone_naming_file_case_and_field(project: Suite) -> None:
    write(project, document(case("Fine", key="fine"), {"name": "No instructions"}))
    result = project.run("--collect-only", "-q")
    result.stdout.fnmatch_lines(["cekura.tests.json::fine", "cekura.tests.json::No instructions"])
    ran = project.run("-k", "No")
    ran.assert_outcomes(errors=1, deselected=1)
    problem = "cekura.tests.json::No instructions: scenarios[1]: Instructions are required."
    assert problem in ran.stdout.lines
    assert project.emulator.count("POST") == 0


def test_a_bad_file_is_a_collection_error_naming_the_field(project: Suite) -> None:
    bad = json.loads(document(case("Fine")))
    bad["agent_id"] = 42
    bad["version"] = "2"
    write(project, json.dumps(bad))
    result = project.run("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "cekura.tests.json: version: Input should be '1'; "
            "agent_id: agent_id does not belong in the suite document*"
        ]
    )
    write(project, "{not json")
    broken = project.run("--collect-only", "-q")
    broken.stdout.fnmatch_lines(["*cekura.tests.json: not JSON: *line 1, column 2*"])
