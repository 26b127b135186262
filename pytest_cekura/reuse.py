"""Result reuse: remember each request shape's newest result, and reuse it when asked.

Re-running a suite after fixing one test should not pay again for the calls that already
passed: with ``--cekura-reuse=1h`` a group whose exact scenarios and options were run less than
an hour ago, and whose runs all completed, takes that result instead of starting new calls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .submit import Group

CACHE_KEY = "cekura/results"
#: GroupKey fields added after the cache format was set, with their unset values.
_LATER_FIELDS: dict[str, Any] = {
    "concurrency_limit": None,
    "mock_tool_names": None,
    "livekit_data": "{}",
}


@dataclass(frozen=True)
class Remembered:
    result_id: int
    run_ids: tuple[int, ...]
    created: float  # seconds since the epoch


class ResultCache:
    """The newest result per (API, request shape, scenario set), in pytest's cache."""

    def __init__(
        self,
        load: Callable[[], Any],
        save: Callable[[dict[str, Any]], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._load = load
        self._save = save
        self._clock = clock

    @staticmethod
    def key(group: Group, api_url: str) -> str:
        # Every field of the GroupKey shapes the request, so each is part of the key: a result
        # of another concurrency limit, tool mocks or livekit_data is never reused. Fields
        # added later are left out while unset, so results cached before them still match.
        request = {
            name: value
            for name, value in asdict(group.key).items()
            if name not in _LATER_FIELDS or value != _LATER_FIELDS[name]
        }
        shape = {"api": api_url, "request": request, "scenarios": sorted(group.scenario_ids)}
        return json.dumps(shape, sort_keys=True)

    def recall(self, group: Group, api_url: str, max_age: float) -> Remembered | None:
        return self.recall_key(self.key(group, api_url), max_age)

    def recall_key(self, key: str, max_age: float) -> Remembered | None:
        """The newest result remembered under ``key`` (any request shape: Tests-as-Code
        groups have keys of their own, ``case_start.cache_key``), if not older than
        ``max_age`` seconds."""
        entry = self._entries().get(key)
        if not isinstance(entry, Mapping):
            return None
        try:
            found = Remembered(
                int(entry["result_id"]),
                tuple(int(i) for i in entry["run_ids"]),
                float(entry["created"]),
            )
        except (KeyError, TypeError, ValueError):
            return None  # an entry from another version: start afresh rather than guess
        return found if self._clock() - found.created <= max_age else None

    def remember(self, group: Group, api_url: str, result_id: int, run_ids: list[int]) -> None:
        self.remember_key(self.key(group, api_url), result_id, run_ids)

    def remember_key(self, key: str, result_id: int, run_ids: list[int]) -> None:
        entries = self._entries()
        entries[key] = {
            "result_id": result_id,
            "run_ids": run_ids,
            "created": self._clock(),
        }
        self._save(entries)

    def age(self, remembered: Remembered) -> float:
        return max(0.0, self._clock() - remembered.created)

    def _entries(self) -> dict[str, Any]:
        data = self._load()
        return dict(data) if isinstance(data, Mapping) else {}


def describe_age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
