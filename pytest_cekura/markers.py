"""The ``cekura_scenario`` marker: its documentation line and the validation of its arguments."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .client import PROVIDERS
from .errors import ConfigError

MARKER = "cekura_scenario"
MARKER_DOC = (
    f"{MARKER}(*scenario_ids, frequency=1, min_success_rate=1.0, provider='livekit', "
    "test_profile=None): run these Cekura scenarios (each `frequency` times) and pass when the "
    "share of successful runs reaches min_success_rate. See the pytest-cekura docs."
)
MAX_FREQUENCY = 100  # the API's documented range for ``frequency`` is 1-100


@dataclass(frozen=True)
class GroupKey:
    """Everything that changes the run-starting request: tests sharing it share one POST."""

    provider: str
    frequency: int
    test_profile: int | None


@dataclass(frozen=True)
class ScenarioSpec:
    """A validated ``cekura_scenario`` marker."""

    scenario_ids: tuple[int, ...]
    frequency: int = 1
    min_success_rate: float = 1.0
    provider: str = "livekit"
    test_profile: int | None = None

    @property
    def group_key(self) -> GroupKey:
        return GroupKey(self.provider, self.frequency, self.test_profile)


_KEYWORDS = ("frequency", "min_success_rate", "provider", "test_profile")


def parse_marker(args: Sequence[Any], kwargs: Mapping[str, Any]) -> ScenarioSpec:
    """Validate marker arguments; raise ``ConfigError`` naming the argument, value and fix."""
    for name in kwargs:
        if name not in _KEYWORDS:
            raise _error(f"unknown argument {name}={kwargs[name]!r}{_suggest(name)}")
    return ScenarioSpec(
        scenario_ids=_scenario_ids(args),
        frequency=_frequency(kwargs.get("frequency", 1)),
        min_success_rate=_rate(kwargs.get("min_success_rate", 1.0)),
        provider=_provider(kwargs.get("provider", "livekit")),
        test_profile=_test_profile(kwargs.get("test_profile")),
    )


def _error(detail: str) -> ConfigError:
    return ConfigError(f"@pytest.mark.{MARKER}: {detail}")


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, _KEYWORDS, n=1)
    hint = f"did you mean {close[0]}=? " if close else ""
    return f" ({hint}known arguments: {', '.join(_KEYWORDS)})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _scenario_ids(args: Sequence[Any]) -> tuple[int, ...]:
    if not args:
        raise _error("no scenario ids given; pass at least one, e.g. cekura_scenario(30)")
    seen: set[int] = set()
    for value in args:
        if not _is_int(value) or value <= 0:
            raise _error(
                f"scenario id {value!r} is invalid; "
                "use the positive integer id shown in Cekura's scenario list"
            )
        if value in seen:
            raise _error(
                f"scenario id {value} is listed twice; use frequency= to run it several times"
            )
        seen.add(value)
    return tuple(args)


def _frequency(value: Any) -> int:
    if not _is_int(value) or not 1 <= value <= MAX_FREQUENCY:
        raise _error(f"frequency={value!r} is invalid; use an integer from 1 to {MAX_FREQUENCY}")
    return int(value)


def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise _error(
            f"min_success_rate={value!r} is invalid; use a fraction from 0.0 to 1.0 "
            "(e.g. 0.8 for 80%)"
        )
    return float(value)


def _provider(value: Any) -> str:
    if value not in PROVIDERS:
        raise _error(f"provider={value!r} is not supported; use one of: {', '.join(PROVIDERS)}")
    return str(value)


def _test_profile(value: Any) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or value <= 0:
        raise _error(
            f"test_profile={value!r} is invalid; use the positive integer id of a Cekura "
            "test profile, or leave it out"
        )
    return int(value)
