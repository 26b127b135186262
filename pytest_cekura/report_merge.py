"""``python -m pytest_cekura.report merge SHARD.json... [--md PATH] [--json PATH]``.

A suite split over CI machines (shards: pytest-split, or a matrix of ``-k`` expressions or
node ids) gives one ``--cekura-report`` JSON file per shard. This merges them into the one
summary a pull request needs: the Markdown of ``summary_md.py`` (same table, same folding)
and one JSON report of the same format, with one exit status for the whole suite.

Exit status:

* 0: every Cekura test of every shard passed (or was skipped);
* 1: at least one Cekura test failed or errored, in any shard;
* 2: the shards cannot be merged: a file is missing (did that shard stop before writing its
  report?), is not a pytest-cekura JSON report, has another format version, or a test is in
  two shards (the split gave it to both);
* 5: no shard ran a Cekura test (as pytest's own "no tests collected").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .report_data import REPORT_VERSION, SummaryRow
from .summary_md import markdown_summary

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_TESTS = 5
#: pytest's outcomes that fail the merged suite.
FAILING = ("failed", "error")
_ROW_FIELDS = frozenset(field.name for field in dataclasses.fields(SummaryRow))


class MergeError(Exception):
    """The shards cannot be merged; the message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class Shard:
    path: Path
    data: dict[str, Any]


def load_shard(path: Path) -> Shard:
    """One shard's ``--cekura-report``, checked to be one this version can merge."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MergeError(
            f"{path}: no such file. Did that shard stop before pytest-cekura wrote its report "
            "(see its job log)? Run each shard with --cekura-report=PATH, and the merge step "
            "even when a shard failed (GitHub Actions: if: always())."
        ) from None
    except OSError as exc:
        raise MergeError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MergeError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
        raise MergeError(
            f"{path}: not a pytest-cekura JSON report (no 'tests' list): give the files "
            "written by --cekura-report"
        )
    version = data.get("format_version")
    if version != REPORT_VERSION:
        raise MergeError(
            f"{path}: report format_version {version!r}, this pytest-cekura merges version "
            f"{REPORT_VERSION}: run every shard and the merge with the same pytest-cekura"
        )
    if data.get("interrupted") is True:
        raise MergeError(
            f"{path}: that shard was interrupted (Ctrl-C, a cancelled job or errors during "
            "collection: see its log), so some of its tests did not run; rerun it"
        )
    _check_entries(path, data)
    return Shard(path, data)


def _check_entries(path: Path, data: dict[str, Any]) -> None:
    """A damaged or hand-edited report is one clear error (exit 2), not a traceback whose
    exit status 1 would read as "a Cekura test failed"."""
    fix = "give the files written by --cekura-report, unedited"
    for index, test in enumerate(data["tests"]):
        try:
            rows_of({"tests": [test]})
        except (TypeError, ValueError, AttributeError) as exc:
            raise MergeError(
                f"{path}: tests[{index}] is not a test's entry ({exc}): {fix}"
            ) from None
    try:
        {str(k): int(v) for k, v in (data.get("requests") or {}).items()}
    except (TypeError, ValueError, AttributeError) as exc:
        raise MergeError(f"{path}: 'requests' is not a map of counts ({exc}): {fix}") from None


def merge(shards: Sequence[Shard]) -> dict[str, Any]:
    """One JSON report of every shard's tests, groups and requests, in the shards' format
    plus ``shards`` (where each part came from)."""
    owner: dict[str, Path] = {}
    tests: list[dict[str, Any]] = []
    for shard in shards:
        for test in shard.data["tests"]:
            nodeid = str(test.get("nodeid"))
            if nodeid in owner:
                raise MergeError(
                    f"{nodeid} is in {owner[nodeid]} and in {shard.path}: each test must run "
                    "in one shard (check the split: -k expressions or node ids that overlap)"
                )
            owner[nodeid] = shard.path
            tests.append(test)
    requests: Counter[str] = Counter()
    for shard in shards:
        requests.update({str(k): int(v) for k, v in (shard.data.get("requests") or {}).items()})
    started = [s.data["started_at"] for s in shards if s.data.get("started_at")]
    finished = [s.data["finished_at"] for s in shards if s.data.get("finished_at")]
    apis = list(dict.fromkeys(str(s.data.get("api")) for s in shards if s.data.get("api")))
    first, last = (min(started), max(finished)) if started and finished else (None, None)
    return {
        "format_version": REPORT_VERSION,
        "session_id": "+".join(str(s.data.get("session_id")) for s in shards),
        "api": ", ".join(apis) or None,
        # ISO 8601 in UTC with the same layout sorts as text.
        "started_at": first,
        "finished_at": last,
        "duration_s": _seconds(first, last),
        "requests": dict(sorted(requests.items())),
        "groups": [group for s in shards for group in s.data.get("groups") or []],
        "tests": tests,
        "shards": [
            {
                "path": str(s.path),
                "session_id": s.data.get("session_id"),
                "started_at": s.data.get("started_at"),
                "finished_at": s.data.get("finished_at"),
                "tests": len(s.data["tests"]),
            }
            for s in shards
        ],
    }


def rows_of(report: dict[str, Any]) -> list[SummaryRow]:
    """The report's tests as summary rows (keys this version does not know are left out)."""
    return [
        SummaryRow.from_json({k: v for k, v in test.items() if k in _ROW_FIELDS})
        for test in report["tests"]
    ]


def dispatch_name(report: dict[str, Any]) -> str | None:
    """The one LiveKit agent name every run was dispatched to, if there is exactly one."""
    names = {run.get("livekit_agent_name") for t in report["tests"] for run in t.get("runs", [])}
    return names.pop() if len(names) == 1 and None not in names else None


def exit_status(report: dict[str, Any]) -> int:
    outcomes = Counter(str(test.get("outcome")) for test in report["tests"])
    if not report["tests"]:
        return EXIT_NO_TESTS
    return EXIT_FAILED if any(outcomes[o] for o in FAILING) else EXIT_PASSED


def _given_once(paths: Sequence[Path]) -> None:
    """One file named twice (a glob and a name, a typo in the job) is not two shards: its
    tests would be reported as "in a.json and in a.json"."""
    seen: dict[Path, Path] = {}
    for path in paths:
        key = path.expanduser().resolve()
        if key in seen:
            same = "" if str(seen[key]) == str(path) else f" (as {seen[key]} and {path})"
            raise MergeError(
                f"{path}: that file was given twice{same}: give each shard's report once"
            )
        seen[key] = path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_cekura.report",
        description="Merge the --cekura-report JSON files of CI shards into one summary.",
        epilog="Exit status: 0 all passed, 1 a Cekura test failed or errored, 2 the files "
        "cannot be merged, 5 no Cekura test ran.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    merging = commands.add_parser("merge", help="merge shards' JSON reports")
    merging.add_argument("shards", nargs="+", type=Path, metavar="SHARD.json")
    merging.add_argument("--md", type=Path, metavar="PATH", help="write the Markdown summary")
    merging.add_argument("--json", type=Path, metavar="PATH", help="write the merged JSON")
    args = parser.parse_args(argv)
    try:
        _given_once(args.shards)
        report = merge([load_shard(path) for path in args.shards])
        rows = rows_of(report)
        if args.md is not None:
            text = markdown_summary(rows, dispatch_name=dispatch_name(report))
            _write(args.md, text)
        if args.json is not None:
            _write(args.json, json.dumps(report, indent=2) + "\n")
    except MergeError as exc:
        print(f"pytest-cekura merge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    counts = Counter(row.outcome for row in rows)
    totals = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "none"
    print(
        f"pytest-cekura merge: {len(args.shards)} shard report(s), "
        f"{len(rows)} Cekura test(s): {totals}"
    )
    return exit_status(report)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise MergeError(f"{path}: cannot be written: {exc.strerror}") from None


def _seconds(first: str | None, last: str | None) -> float | None:
    if first is None or last is None:
        return None
    try:
        start = datetime.fromisoformat(first.replace("Z", "+00:00"))
        end = datetime.fromisoformat(last.replace("Z", "+00:00"))
    except ValueError:
        return None
    return round((end - start).total_seconds(), 3)
