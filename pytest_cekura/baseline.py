"""Baselines: per-test success rates a team commits, and comparisons against them.

A baseline turns "is the agent good enough?" into "did the agent get worse?": with
``--cekura-compare`` a test fails only when its success rate fell by more than the tolerance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .outcome import below_threshold, regressed
from .report import SummaryRow

FORMAT_KEY = "pytest-cekura-baseline"
FORMAT_VERSION = 1


#: Sessions the baseline's ``history`` keeps (the HTML report's trend lines), newest last.
HISTORY_MAX = 20


def write_baseline(
    path: Path, rows: Sequence[SummaryRow], now: datetime | None = None
) -> list[str]:
    """Write the baseline; return the ids of the tests it records failing (to warn about).

    Besides ``tests`` (what ``--cekura-compare`` reads) the file keeps a bounded ``history``:
    each recording session's time and success rates, the last ``HISTORY_MAX``, carried over
    from the file being replaced (a file from before the history was kept gives its
    ``tests`` as the first entry). Readers that know only ``tests`` are unaffected.
    """
    recorded = [
        row for row in rows if row.succeeded is not None and row.total and row.outcome != "error"
    ]
    tests = {
        row.nodeid: {"success_rate": round(row.succeeded / row.total, 4), "runs": row.total}
        for row in recorded
        if row.succeeded is not None and row.total
    }
    moment = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    entry = {
        "at": moment.replace("+00:00", "Z"),
        "tests": {nodeid: test["success_rate"] for nodeid, test in sorted(tests.items())},
    }
    history = [*_raw_history(path), entry][-HISTORY_MAX:]
    data = {FORMAT_KEY: FORMAT_VERSION, "tests": dict(sorted(tests.items())), "history": history}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return [row.nodeid for row in recorded if row.outcome == "failed"]


def _raw_history(path: Path) -> list[dict[str, Any]]:
    """The history entries of an existing baseline file, leniently: a missing or unreadable
    file, or a malformed entry, gives no history rather than an error (it is only a chart)."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(data, Mapping) or data.get(FORMAT_KEY) != FORMAT_VERSION:
        return []
    history = data.get("history")
    if history is None:  # written before history was kept: its tests are one session
        tests = data.get("tests")
        if not isinstance(tests, Mapping) or not tests:
            return []
        history = [
            {
                "at": None,
                "tests": {
                    str(k): v.get("success_rate")
                    for k, v in tests.items()
                    if isinstance(v, Mapping)
                },
            }
        ]
    entries = []
    for entry in history if isinstance(history, list) else []:
        rates = entry.get("tests") if isinstance(entry, Mapping) else None
        if not isinstance(rates, Mapping):
            continue
        good = {
            str(k): float(v)
            for k, v in rates.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1
        }
        at = entry.get("at")
        entries.append({"at": at if isinstance(at, str) else None, "tests": good})
    return entries[-HISTORY_MAX:]


def load_history(path: Path) -> list[tuple[str | None, dict[str, float]]]:
    """The recorded sessions of a baseline file, oldest first: (when, test id -> success
    rate). Empty for a missing or unreadable file."""
    return [(entry["at"], entry["tests"]) for entry in _raw_history(path)]


def baseline_failing_warning(nodeids: Sequence[str]) -> str:
    """One line: the baseline just written records these tests failing."""
    return (
        f"pytest-cekura warning: the baseline records {len(nodeids)} failing test(s): "
        f"{', '.join(nodeids)}; --cekura-compare will pass them as long as they get no "
        "worse (flagged as 'baseline below threshold'): fix them and record again, or "
        "remove them from the file to judge them by their threshold."
    )


def load_baseline(path: Path) -> dict[str, float]:
    """Test id -> success rate; one clear error for a file that is not a baseline."""
    fix = "write one with --cekura-baseline PATH"
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"pytest-cekura: cannot read baseline {path}: {exc}; {fix}") from None
    except RecursionError:  # nested deeper than the JSON parser goes
        raise ConfigError(
            f"pytest-cekura: cannot read baseline {path}: nested too deeply to be one; {fix}"
        ) from None
    if not isinstance(data, Mapping) or data.get(FORMAT_KEY) != FORMAT_VERSION:
        raise ConfigError(f"pytest-cekura: {path} is not a pytest-cekura baseline; {fix}")
    tests = data.get("tests", {})
    if not isinstance(tests, Mapping):
        raise ConfigError(
            f'pytest-cekura: baseline {path}: "tests" is {_json_type(tests)}; expected an '
            f"object of test id -> {{success_rate, runs}} ({fix})"
        )
    rates: dict[str, float] = {}
    for nodeid, entry in tests.items():
        rate = entry.get("success_rate") if isinstance(entry, Mapping) else None
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ConfigError(
                f"pytest-cekura: baseline {path}: {nodeid!r} has success_rate {rate!r}; "
                f"expected a fraction from 0 to 1 ({fix})"
            )
        rates[str(nodeid)] = float(rate)
    return rates


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    names = {str: "a string", list: "a list", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def check_writable(path: Path, source: str) -> None:
    """Fail now, before any call is paid for, if ``path`` cannot be written at the end.

    The check opens the file as the session will (a file that did not exist is removed
    again): permission bits alone say nothing when running as root or on a read-only mount.
    """
    fix = "choose a file path you can write to"
    if path.is_dir():
        raise ConfigError(f"{source}={str(path)!r}: it is a folder; {fix}")
    existed = path.exists()
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"{source}={str(path)!r}: it cannot be written ({reason}); {fix}"
        ) from None
    if not existed:
        path.unlink(missing_ok=True)


def comparison_lines(
    rows: Sequence[SummaryRow], baseline: Mapping[str, float], tolerance: float
) -> list[str]:
    lines = []
    for row in rows:
        if row.succeeded is None or not row.total:
            continue
        now = row.succeeded / row.total
        before = baseline.get(row.nodeid)
        if before is None:
            lines.append(f"new       {row.nodeid}: {now:.0%} (not in the baseline)")
            continue
        change = (now - before) * 100
        word = "REGRESSED" if regressed(now, before, tolerance) else "ok"
        # A baseline that was itself failing: "ok" only means "no worse", so say so.
        flag = (
            f"; baseline below the {row.min_success_rate:.0%} threshold"
            if below_threshold(before, row.min_success_rate)
            else ""
        )
        lines.append(
            f"{word:9} {row.nodeid}: {before:.0%} -> {now:.0%} ({change:+.0f} points{flag})"
        )
    return lines
