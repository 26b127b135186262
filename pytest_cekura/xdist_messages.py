"""What passes between pytest-xdist processes: a worker's ``WorkerOutput`` to the controller,
and the submitting worker's ``Manifest`` to the other workers (``xdist.py`` uses them; they are
plain, versioned data, read leniently)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

MANIFEST_FORMAT = "pytest-cekura-manifest"
MANIFEST_VERSION = 1


@dataclass
class WorkerOutput:
    """What a worker hands the controller (``workeroutput``), read when the worker goes down;
    each field travels as ``cekura_<field>``."""

    request_counts: dict[str, int] = field(default_factory=dict)
    #: Preflight's warnings, and what the client decided on its own (shown at -v).
    warnings: list[str] = field(default_factory=list)
    api_notices: list[str] = field(default_factory=list)
    #: What the worker's clean-up had to say (a worker's terminal is not shown).
    cleanup_lines: list[str] = field(default_factory=list)
    #: Under --cekura-dry-run: the plan, as the worker would print it.
    dry_run: list[str] | None = None
    #: Under --cekura-dry-run with Tests-as-Code cases: Cekura's plan for them.
    case_plan: list[str] | None = None
    #: Why the session stopped before any test ran (the controller stops the run with it).
    session_error: str | None = None
    #: A session-level error met after tests had started.
    late_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f"cekura_{name}": value for name, value in vars(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkerOutput:
        """Lenient: a worker that crashed sends nothing, an odd value is dropped."""

        def strings(name: str) -> list[str]:
            value = data.get(f"cekura_{name}")
            return [str(line) for line in value] if isinstance(value, list) else []

        def text(name: str) -> str | None:
            value = data.get(f"cekura_{name}")
            return value if isinstance(value, str) else None

        counts = data.get("cekura_request_counts")
        plan = data.get("cekura_dry_run")
        case_plan = data.get("cekura_case_plan")
        return cls(
            request_counts=dict(counts) if isinstance(counts, dict) else {},
            warnings=strings("warnings"),
            api_notices=strings("api_notices"),
            cleanup_lines=strings("cleanup_lines"),
            dry_run=[str(line) for line in plan] if isinstance(plan, list) else None,
            case_plan=[str(line) for line in case_plan] if isinstance(case_plan, list) else None,
            session_error=text("session_error"),
            late_error=text("late_error"),
        )


@dataclass(frozen=True)
class Manifest:
    """What the submitting worker shares with the others: every test's assignment (as
    ``records.Assignment.to_json`` gives it), preflight's warnings, or the session's error."""

    assignments: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    #: Tests-as-Code cases (added in version 1, read as absent when missing): each test's
    #: ``{"provider", "agent", "assignment"}`` (``tests_as_code.assignments_to_json``).
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Under --cekura-dry-run: Cekura's plan for the cases (validated once, for every worker).
    case_plan: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            MANIFEST_FORMAT: MANIFEST_VERSION,
            "assignments": self.assignments,
            "warnings": self.warnings,
            "error": self.error,
            "cases": self.cases,
            "case_plan": self.case_plan,
        }

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        if not isinstance(data, dict) or data.get(MANIFEST_FORMAT) != MANIFEST_VERSION:
            raise ConfigError(
                "pytest-cekura: the xdist manifest was written by another version of "
                "pytest-cekura (its workers must all run the same version); re-run."
            )
        plan = data.get("case_plan")
        return cls(
            dict(data["assignments"]),
            list(data["warnings"]),
            data["error"],
            # Additive fields: a manifest without them has no cases.
            cases=dict(data.get("cases") or {}),
            case_plan=[str(line) for line in plan] if isinstance(plan, list) else None,
        )

    def run_ids(self) -> list[int]:
        assignments = [
            *self.assignments.values(),
            *(case.get("assignment", {}) for case in self.cases.values()),
        ]
        return [
            run["id"]
            for assignment in assignments
            for run in assignment.get("runs", [])
            if "id" in run
        ]
