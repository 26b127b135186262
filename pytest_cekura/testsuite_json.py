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
from typing import TYPE_CHECKING, Any

import pytest

from .errors import ConfigError
from .suites import first_call_for

if TYPE_CHECKING:
    from .gates import Gate
    from .session import CekuraSession

PLUGIN_NAME = "cekura-tests-as-code"
SUITE_NAME = "cekura.tests.json"
SUITE_SUFFIX = ".cekura.json"
_LAST_PATH = pytest.StashKey[Path]()
#: The session that submitted the cases (set by the plugin): a case passes only if judged.
CASE_SESSION: pytest.StashKey[CekuraSession] = pytest.StashKey()


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
    #: Metric gates (the marker's ``gates=`` over the session's): not sent, judged with the
    #: verdict as for ``cekura_scenario``. A suite document has no place for them (it is
    #: Cekura's format, sent as written), so a file's cases take the session's.
    gates: tuple[Gate, ...] = ()

    def problem_text(self) -> str:
        return "\n".join(
            f"{self.source}::{self.key}: {where}: {message}"
            for where, messages in self.problems.items()
            for message in messages
        )


CASE_MARKER = "cekura_case"
CASE_MARKER_DOC = (
    f"{CASE_MARKER}(name=..., instructions=..., expected_outcome=..., metrics=[...], ..., "
    "gates=None): a Tests-as-Code case written next to the test, judged by its runs and metric "
    "gates (pytest-cekura; docs/tests-as-code.md)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", CASE_MARKER_DOC)


def case_from_marker(item: pytest.Item, default_gates: tuple[Gate, ...] = ()) -> CaseSpec | None:
    """The ``cekura_case`` marker of ``item`` as a case; ``ConfigError`` naming the field.

    The keywords are the fields of one case of the file format; ``name`` defaults to the
    test's name and ``key`` to the node id, so two tests never share a key. ``gates=`` is
    pytest's, not a case field: it is read as ``cekura_scenario``'s (over ``default_gates``,
    the session's) and never sent.
    """
    mark = item.get_closest_marker(CASE_MARKER)
    if mark is None:
        return None
    prefix = f"@pytest.mark.{CASE_MARKER}"
    if mark.args:
        raise ConfigError(
            f"{prefix}: takes keyword arguments only (name=..., instructions=..., ...), "
            f"got {len(mark.args)} positional"
        )
    if item.get_closest_marker("cekura_scenario") is not None:
        raise ConfigError(
            f"{prefix}: this test also has @pytest.mark.cekura_scenario; give it one of them "
            "(a case is judged by its own runs)"
        )
    # Imported here, not at the top: this module is registered in every session, and a session
    # with no case must not pay for importing pydantic (docs/performance.md, target 4).
    from pydantic import ValidationError

    from . import suite_document

    kwargs = dict(mark.kwargs)
    gates = _gates(kwargs.pop("gates", None), default_gates, prefix)
    case = {"name": item.name[: suite_document.MAX_NAME], **kwargs}
    try:
        model = suite_document.Case.model_validate(case)
    except ValidationError as failed:
        found = suite_document.problems(failed)
        text = "; ".join(
            f"{where}: {message}" if where != "document" else message
            for where, messages in found.items()
            for message in messages
        )
        raise ConfigError(f"{prefix}: {text}") from None
    key = model.key if model.key is not None else item.nodeid
    return CaseSpec(key=key, case={**case, "key": key}, source=item.nodeid, gates=gates)


def _gates(value: Any, defaults: tuple[Gate, ...], prefix: str) -> tuple[Gate, ...]:
    from .gates import GateSyntaxError, parse_gates

    try:
        return parse_gates(value, defaults)
    except GateSyntaxError as exc:  # worded as cekura_scenario's, under this marker's name
        raise ConfigError(f"{prefix}: {exc}") from None


def is_suite_file(path: Path) -> bool:
    return path.name == SUITE_NAME or path.name.endswith(SUITE_SUFFIX)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect ``cekura.tests.json`` and ``*.cekura.json`` files as Tests-as-Code suites."""
    if not is_suite_file(file_path):
        return None
    if not first_call_for(parent, file_path, _LAST_PATH):
        return None
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
        cekura = self.config.stash.get(CASE_SESSION, None)
        record = cekura.records.get(self.nodeid) if cekura is not None else None
        if record is not None and record.verdict is not None:
            return
        if cekura is not None and cekura.settings.dry_run and not self.spec.problems:
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
        kinds = {list: "a list", str: "a string", bool: "a boolean", int: "a number"}
        found = kinds.get(type(data), "null" if data is None else "a number")
        raise JsonSuiteError(
            f"{source}: the top level is {found}; a suite document is a JSON object with "
            'a "version" and a "scenarios" list, e.g. {"version": "1", "scenarios": '
            '[{"name": "Refund", "instructions": "You call about a refund."}]}'
        )
    from pydantic import ValidationError

    from . import suite_document

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
