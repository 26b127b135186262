"""Scenario suites without Python: each ``[[test]]`` entry of a ``cekura_*.toml`` file is a test.

A suite file::

    [[test]]
    name = "refill flow"        # required: the test's name (id ``cekura_smoke.toml::refill flow``)
    scenarios = [30, 31]        # required: the marker's positional scenario ids
    frequency = 3               # optional: any cekura_scenario keyword, passed through as is
    min_success_rate = 0.8

Every entry becomes a ``CekuraSuiteItem`` carrying ``@pytest.mark.cekura_scenario(...)`` built
from its keys, so the plugin's hooks treat it exactly like a marked Python test: the same POST
grouping, verdicts, failure reports, JUnit properties and summary. Only the file's shape (the
keys, which it must know to build the marker) is checked at collection, by the pydantic model
in ``suite_toml.py``; the values go to the marker unchanged, so a bad value errors that item at
setup with the marker's own message, exactly as for a Python test. This module says where a
problem is (file, line, entry); entries are numbered from 1, like the emulator catalogue's.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .errors import ConfigError
from .markers import MARKER

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

#: Files collected as suites. Distinct from the emulator catalogue's usual name
#: (``cekura-catalogue.toml``, with a hyphen), so a catalogue is never taken for a suite.
SUITE_GLOB = "cekura_*.toml"
#: The one top-level table a suite file holds: ``[[test]]``.
TABLE = "test"
REQUIRED_KEYS = ("name", "scenarios")
#: A ``[[test]]`` header line, to give each entry a line number (tomllib keeps none).
_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*test[ \t]*\]\][ \t]*(#.*)?$")
_LAST_PATH = pytest.StashKey[Path]()
#: How the marker's own messages about a bad argument begin.
_MARKER_ERROR = f"@pytest.mark.{MARKER}: "


class SuiteError(ConfigError):
    """A suite file cannot be collected; the message names file, entry, key and the fix."""


@dataclass(frozen=True)
class SuiteEntry:
    """One validated ``[[test]]`` entry: what its item needs to build the marker."""

    name: str
    scenarios: tuple[Any, ...]
    #: The marker's keyword arguments, values unchecked (the marker checks them at setup).
    options: Mapping[str, Any] = field(default_factory=dict)
    #: 0-based line of the entry's ``[[test]]`` header, or None when it cannot be told.
    line: int | None = None
    #: 0-based line of each of the entry's keys that could be found in the text.
    key_lines: Mapping[str, int] = field(default_factory=dict)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect ``cekura_*.toml`` files as Cekura suites."""
    if not fnmatchcase(file_path.name, SUITE_GLOB):
        return None
    if not first_call_for(parent, file_path, _LAST_PATH):
        return None
    return CekuraSuiteFile.from_parent(parent, path=file_path)


def first_call_for(parent: pytest.Collector, file_path: Path, key: pytest.StashKey[Path]) -> bool:
    """Whether this is the first call of a ``pytest_collect_file`` hook (its own ``key``) for
    this very ``file_path`` object.

    Should a hook be registered twice (the plugin, plus a conftest that imports it), pluggy
    calls both copies within one hook call, with the very same ``file_path`` object; only the
    first may collect, or every entry would run twice. A later collection of the same
    directory (--keep-duplicates) builds new Path objects, so it still collects.
    """
    if parent.stash.get(key, None) is file_path:
        return False
    parent.stash[key] = file_path
    return True


class CekuraSuiteFile(pytest.File):
    """A ``cekura_*.toml`` file; a bad file is a collection error of its own, like a bad module."""

    def collect(self) -> list[CekuraSuiteItem]:
        manager = self.config.pluginmanager
        if not manager.has_plugin(_REPORTS):
            manager.register(_LocatedSetupErrors(), _REPORTS)
        try:
            entries = load_suite(self.path, source=self.nodeid or self.path.name)
        except SuiteError as exc:
            # CollectError is reported with its message alone, without a traceback.
            raise self.CollectError(str(exc)) from None
        return [
            CekuraSuiteItem.from_parent(self, name=entry.name, entry=entry) for entry in entries
        ]


class CekuraSuiteItem(pytest.Item):
    """One ``[[test]]`` entry: a test whose whole content is its ``cekura_scenario`` marker."""

    def __init__(self, *, entry: SuiteEntry, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entry = entry
        # with_args rather than a call: a call with a single callable argument would decorate
        # it instead of recording it as an argument.
        self.add_marker(pytest.mark.cekura_scenario.with_args(*entry.scenarios, **entry.options))

    def runtest(self) -> None:
        """Nothing to run: the plugin's setup and call hooks raise first when the test errors or
        fails, so reaching this means Cekura's runs met the entry's success rate."""

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self.entry.line, f"cekura: {self.name}"

    def _locate_marker_error(self, message: str) -> str | None:
        """A bad value's marker message, led by ``file:line:`` of the key that holds it."""
        detail = message.removeprefix(_MARKER_ERROR)
        if detail == message:
            return None  # a verdict, not a bad value
        named = re.match(r"(\w+)[= \[]", detail)  # "gates['Latency'] = ..." names gates too
        key = "scenarios" if re.match(r"(no )?scenario id", detail) else named and named[1]
        line = self.entry.key_lines.get(key) if key else None
        return f"{self.nodeid.split('::')[0]}:{line + 1}: {message}" if line is not None else None

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: str | None = None
    ) -> str | TerminalRepr:
        # The plugin's verdicts come as pytest.fail(report, pytrace=False): the report is the
        # whole story, and a traceback could only show the plugin's internals, never the
        # user's file. "value" renders the report alone, exactly as for a marked Python test
        # (same text in the terminal, the short summary and JUnit XML).
        if isinstance(excinfo.value, pytest.fail.Exception):
            located = self._locate_marker_error(str(excinfo.value.msg))
            return located or super().repr_failure(excinfo, style="value")
        if self.config.getoption("fulltrace", False):
            return super().repr_failure(excinfo)
        return (
            f"{excinfo.exconly()}\n"
            "(an unexpected error inside pytest-cekura; rerun with --fulltrace to see where)"
        )


_REPORTS = "cekura-suite-reports"


class _LocatedSetupErrors:
    """pytest reports a setup error with the exception alone, without ``repr_failure``: a bad
    value's marker message is led by the line of its key here instead."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if (
            isinstance(item, CekuraSuiteItem)
            and call.when == "setup"
            and call.excinfo is not None
            and isinstance(call.excinfo.value, pytest.fail.Exception)
        ):
            located = item._locate_marker_error(str(call.excinfo.value.msg))
            if located is not None:
                report.longrepr = located
        return report


def load_suite(path: Path, *, source: str | None = None) -> list[SuiteEntry]:
    """Read and check a suite file; raise ``SuiteError`` naming the first problem and its fix."""
    source = source or str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteError(
            f"{source}: not UTF-8 text (byte {exc.start}); save the suite as UTF-8 TOML"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line N, column M)".
        raise SuiteError(f"{source}: TOML syntax error: {exc}; fix the syntax there") from None
    headers = _header_lines(text)
    return parse_suite(
        data, source=source, lines=headers, key_lines=_key_lines(text, headers, data.get(TABLE))
    )


def parse_suite(
    data: Mapping[str, Any],
    *,
    source: str = "<suite>",
    lines: Sequence[int] = (),
    key_lines: Sequence[Mapping[str, int]] = (),
) -> list[SuiteEntry]:
    """Check already-parsed TOML; ``lines`` are the entries' 0-based header lines and
    ``key_lines`` the 0-based line of each entry's keys, if known."""
    from .suite_toml import first_problem  # pydantic: only once a suite file is met

    problem = first_problem(data)
    if problem is not None and problem.entry is None:
        raise SuiteError(f"{source}: {problem.message}")
    raw_entries: list[Any] = list(data.get(TABLE, []))
    # Entries before the first bad one are read in order, so a name used twice among them
    # is named first, as a reader going down the file meets it.
    bad = problem.entry if problem is not None else None
    # Header lines are trusted only when they match the entries one to one (an entry may also
    # be written inline, as test = [{...}], and then no line is known).
    known_lines: Sequence[int | None] = (
        lines if len(lines) == len(raw_entries) else [None] * len(raw_entries)
    )
    known_keys: Sequence[Mapping[str, int]] = (
        key_lines if len(key_lines) == len(raw_entries) else [{}] * len(raw_entries)
    )
    entries: list[SuiteEntry] = []
    first_seen: dict[str, _Where] = {}
    numbered = enumerate(zip(raw_entries, known_lines, known_keys, strict=True), start=1)
    for number, (raw, line, keys) in numbered:
        where = _Where(source, number, raw, line, keys)
        if problem is not None and number - 1 == bad:
            at = where.at(problem.key) if problem.key is not None else str(where)
            raise SuiteError(f"{at}: {problem.message}")
        entry = SuiteEntry(
            name=raw["name"],
            scenarios=tuple(raw["scenarios"]),
            options={key: value for key, value in raw.items() if key not in REQUIRED_KEYS},
            line=line,
            key_lines=where.key_lines,
        )
        if entry.name in first_seen:
            raise SuiteError(
                f"{where.at('name')}: name {_quoted(entry.name)} is already used by "
                f"{first_seen[entry.name].entry}"
                "; give every entry of a file its own name (it is the test's id)"
            )
        first_seen[entry.name] = where
        entries.append(entry)
    return entries


@dataclass(frozen=True)
class _Where:
    """Names an entry in messages: ``cekura_x.toml:4: test[2] ("refill flow")``."""

    source: str
    number: int
    raw: Any
    line: int | None
    #: 0-based lines of the entry's keys: a message about one key points at its own line.
    key_lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def entry(self) -> str:
        """The entry alone, for pointing at another entry of the same file."""
        at = f" (line {self.line + 1})" if self.line is not None else ""
        return f"{TABLE}[{self.number}]{self._name}{at}"

    @property
    def _name(self) -> str:
        name = self.raw.get("name") if isinstance(self.raw, dict) else None
        return f" ({_quoted(name)})" if isinstance(name, str) else ""

    def __str__(self) -> str:
        return self._located(self.line)

    def at(self, key: str) -> str:
        """The entry, located at the line of ``key`` (its header's when that is not known)."""
        return self._located(self.key_lines.get(key, self.line))

    def _located(self, line: int | None) -> str:
        # file:line first, the form editors and terminals turn into a link.
        at = f":{line + 1}" if line is not None else ""
        return f"{self.source}{at}: {TABLE}[{self.number}]{self._name}"


def _header_lines(text: str) -> list[int]:
    return [number for number, line in enumerate(text.splitlines()) if _HEADER.match(line)]


def _key_lines(text: str, headers: Sequence[int], entries: Any) -> list[dict[str, int]]:
    """Each entry's keys and the line each is set on (tomllib keeps no positions).

    An entry's keys lie between its ``[[test]]`` header and the next table header, so each
    key is looked for there, as ``key =``, ``"key" =``, a dotted ``key.sub =`` or a
    ``[test.key]`` sub-table, the first such line winning. A key not found (written
    unusually) is left out, and messages about it point at the header instead.
    """
    if not isinstance(entries, list) or len(entries) != len(headers):
        return []
    lines = text.splitlines()
    found: list[dict[str, int]] = []
    for index, (entry, start) in enumerate(zip(entries, headers, strict=True)):
        end = headers[index + 1] if index + 1 < len(headers) else len(lines)
        keys: dict[str, int] = {}
        for key in entry if isinstance(entry, dict) else ():
            pattern = _key_pattern(str(key))
            for number in range(start + 1, end):
                if pattern.match(lines[number]):
                    keys[str(key)] = number
                    break
        found.append(keys)
    return found


def _key_pattern(key: str) -> re.Pattern[str]:
    name = rf"(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')"
    return re.compile(
        rf"^[ \t]*(?:{name}[ \t]*[=.]|\[[ \t]*{TABLE}[ \t]*\.[ \t]*{name}[ \t]*[\].])"
    )


def _quoted(text: str) -> str:
    # Double quotes, as the name is written in the file (repr would use single quotes).
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
