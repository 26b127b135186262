"""Baselines: per-test success rates a team commits, and comparisons against them.

A baseline turns "is the agent good enough?" into "did the agent get worse?": with
``--cekura-compare`` a test fails only when its success rate fell by more than the tolerance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .report import SummaryRow

FORMAT_KEY = "pytest-cekura-baseline"
FORMAT_VERSION = 1


def write_baseline(path: Path, rows: Sequence[SummaryRow]) -> None:
    tests = {
        row.nodeid: {"success_rate": round(row.succeeded / row.total, 4), "runs": row.total}
        for row in rows
        if row.succeeded is not None and row.total and row.outcome != "error"
    }
    data = {FORMAT_KEY: FORMAT_VERSION, "tests": dict(sorted(tests.items()))}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def load_baseline(path: Path) -> dict[str, float]:
    """Test id -> success rate; one clear error for a file that is not a baseline."""
    fix = "write one with --cekura-baseline PATH"
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"pytest-cekura: cannot read baseline {path}: {exc}; {fix}") from None
    if not isinstance(data, Mapping) or data.get(FORMAT_KEY) != FORMAT_VERSION:
        raise ConfigError(f"pytest-cekura: {path} is not a pytest-cekura baseline; {fix}")
    rates: dict[str, float] = {}
    for nodeid, entry in dict(data.get("tests", {})).items():
        rate = entry.get("success_rate") if isinstance(entry, Mapping) else None
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ConfigError(
                f"pytest-cekura: baseline {path}: {nodeid!r} has success_rate {rate!r}; "
                f"expected a fraction from 0 to 1 ({fix})"
            )
        rates[str(nodeid)] = float(rate)
    return rates


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
        word = "REGRESSED" if now + 1e-9 < before - tolerance else "ok"
        lines.append(f"{word:9} {row.nodeid}: {before:.0%} -> {now:.0%} ({change:+.0f} points)")
    return lines
