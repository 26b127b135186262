"""Tests as Code: ``cekura.tests.json`` and ``*.cekura.json`` files collected as tests.

Each case of a version-1 suite document (cekura-api.md 10.3) becomes one ``CekuraCaseItem``
named by the case's ``key`` (its name when it has none), so ``-k refund`` and the node id
``tests/cekura.tests.json::refund-ok`` select it. The document is checked against
``suite_document.SuiteDocument`` at collection, before anything is sent:

* a problem of the file as a whole (not JSON, the version, ``defaults``, ``agent_id`` in the
  document, no cases) is a collection error of the file naming it and the field;
* a problem of one case errors that case alone, at setup, with
  ``file::key: scenarios[2].instructions: Instructions are required.``; the others still run.

Submission (one generated suite per request shape, priced with ``validate_scenarios_json``)
is ``tests_as_code.py``'s; this module only collects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from . import suite_document
from .errors import ConfigError

PLUGIN_NAME = "cekura-tests-as-code"
SUITE_NAME = "cekura.tests.json"
SUITE_SUFFIX = ".cekura.json"
_LAST_PATH = pytest.StashKey[Path]()


class JsonSuiteError(ConfigError):
    """A suite document cannot be collected; the message names the file, the field and the fix."""


@dataclass(frozen=True)
class CaseSpec:
    """One case as collected: what submission needs to put it into a generated suite."""

    key: str
    #: The case as written in the file (sent as is, so the service sees the user's document).
    case: Mapping[str, Any]
    #: The file's ``suite`` and ``defaults``, applied by the service field by field.
    defaults: Mapping[str, Any] = field(default_factory=dict)
    suite: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    index: int = 0
    #: Problems found at collection, by location; a case with any is never sent.
    problems: Mapping[str, list[str]] = field(default_factory=dict)

    def problem_text(self) -> str:
        return "\n".join(
            f"{self.source}::{self.key}: {where}: {message}"
            for where, messages in self.problems.items()
            for message in messages
        )


def is_suite_file(path: Path) -> bool:
    return path.name == SUITE_NAME or path.name.endswith(SUITE_SUFFIX)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect ``cekura.tests.json`` and ``*.cekura.json`` files as Tests-as-Code suites."""
    if not is_suite_file(file_path):
        return None
    # The same guard as suites.py: a second registration of this hook must not collect twice.
    if parent.stash.get(_LAST_PATH, None) is file_path:
        return None
    parent.stash[_LAST_PATH] = file_path
    return CekuraJsonSuiteFile.from_parent(parent, path=file_path)


class CekuraJsonSuiteFile(pytest.File):
    """A suite document; a problem of the whole file is a collection error of its own."""

    def collect(self) -> list[CekuraCaseItem]:
        try:
            cases = load_cases(self.path, source=self.nodeid or self.path.name)
        except JsonSuiteError as exc:
            raise self.CollectError(str(exc)) from None
        return [CekuraCaseItem.from_parent(self, name=case.key, spec=case) for case in cases]


class CekuraCaseItem(pytest.Item):
    """One case of a suite document: a test whose verdict is its Cekura runs'."""

    def __init__(self, *, spec: CaseSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def setup(self) -> None:
        if self.spec.problems:
            pytest.fail(self.spec.problem_text(), pytrace=False)

    def runtest(self) -> None:
        """Nothing to run: the plugin's setup raises first when the runs fail. A case that
        was never judged must not pass silently."""
        from .plugin import _started

        cekura = _started(self.config)
        record = cekura.records.get(self.nodeid) if cekura is not None else None
        if record is not None and record.verdict is not None:
            return
        if cekura is not None and cekura.settings.dry_run:
            pytest.skip("cekura dry run: nothing was submitted")
        pytest.fail(
            f"{self.nodeid}: this case was not submitted to Cekura, so it has no verdict",
            pytrace=False,
        )

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"cekura case: {self.name}"

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: str | None = None
    ) -> Any:
        # Verdicts come as pytest.fail(report, pytrace=False): the report is the whole story.
        if isinstance(excinfo.value, pytest.fail.Exception):
            return super().repr_failure(excinfo, style="value")
        return super().repr_failure(excinfo)


def load_cases(path: Path, *, source: str | None = None) -> list[CaseSpec]:
    """Read and check a suite document; ``JsonSuiteError`` for a problem of the whole file."""
    source = source or str(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise JsonSuiteError(
            f"{source}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except json.JSONDecodeError as exc:
        raise JsonSuiteError(
            f"{source}: not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}); "
            "fix the syntax there"
        ) from None
    return parse_cases(data, source=source)


def parse_cases(data: Any, *, source: str = "<suite>") -> list[CaseSpec]:
    if not isinstance(data, dict):
        raise JsonSuiteError(f'{source}: a suite document is a JSON object with "scenarios"')
    try:
        suite_document.SuiteDocument.model_validate(data)
        problems: dict[str, list[str]] = {}
    except ValidationError as failed:
        problems = suite_document.problems(failed)
    by_case: dict[int, dict[str, list[str]]] = {}
    whole: list[str] = []
    for where, messages in problems.items():
        index = _case_index(where)
        if index is None:
            whole.extend(f"{where}: {message}" for message in messages)
        else:
            by_case.setdefault(index, {})[where] = messages
    if whole:
        raise JsonSuiteError(
            f"{source}: " + "; ".join(whole) + " (see docs/tests-as-code.md for the format)"
        )
    defaults = data.get("defaults") or {}
    suite = data.get("suite") or {}
    cases = []
    seen: set[str] = set()
    for index, raw in enumerate(data["scenarios"]):
        key = _key(raw, index)
        if key in seen:
            raise JsonSuiteError(
                f"{source}: scenarios[{index}]: key {key!r} is already used by another case; "
                "give every case a unique key (it is the test's id)"
            )
        seen.add(key)
        cases.append(
            CaseSpec(
                key=key,
                case=raw if isinstance(raw, dict) else {},
                defaults=defaults,
                suite=suite,
                source=source,
                index=index,
                problems=by_case.get(index, {}),
            )
        )
    return cases


def _case_index(where: str) -> int | None:
    if not where.startswith("scenarios["):
        return None
    return int(where[len("scenarios[") : where.index("]")])


def _key(raw: Any, index: int) -> str:
    if isinstance(raw, dict):
        for name in ("key", "name"):
            value = raw.get(name)
            if isinstance(value, str) and value:
                return value
    return f"scenarios[{index}]"
