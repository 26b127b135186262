"""Shared helpers of the emulator tests (fixtures live in conftest.py)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

API_KEY = "emulator-key"
#: Built once and shared: httpx builds a TLS context per client otherwise (~20 ms, loading the
#: CA bundle), which would dominate these tests although they only speak plain HTTP.
TLS = ssl.create_default_context()
LIVEKIT = "/test_framework/v1/scenarios-external/run_scenarios_livekit_v2/"

# Scenario ids by behaviour; durations are emulated seconds (time_scale=1 in these tests, so
# they equal fake-clock seconds).
PASS, FAIL, ERROR, FLAKY, HANG = 31, 32, 33, 34, 35
GONE = 36  # exists = false: a deleted scenario
REFILL = 37  # belongs to the LiveKit agent below
# Agents: complete LiveKit settings, only a URL, and deleted. Unlisted ids exist (defaults).
PHARMACY, HALF, DELETED = 42, 43, 44
CATALOGUE: dict[str, Any] = {
    "scenario": [
        {"id": PASS, "name": "Refund request", "outcome": "pass", "duration_s": 100},
        {"id": FAIL, "name": "Billing dispute", "outcome": "fail", "duration_s": 120, "agent": 9},
        {"id": ERROR, "name": "Address change", "outcome": "error", "duration_s": 40},
        {
            "id": FLAKY,
            "name": "Flaky lookup",
            "outcome": "flaky",
            "duration_s": 50,
            "success_probability": 0.5,
        },
        {"id": HANG, "name": "Endless hold", "outcome": "hang", "duration_s": 60},
        {"id": GONE, "name": "Deleted scenario", "exists": False},
        {"id": REFILL, "name": "Prescription refill", "agent": PHARMACY},
    ],
    "agent": [
        {
            "id": PHARMACY,
            "name": "Pharmacy agent",
            "livekit_url": "wss://pharmacy.livekit.cloud",
            "livekit_api_key": "APIxxxxxxxx",
            "livekit_api_secret": "secret-value",
            "livekit_agent_name": "pharmacy-agent",
            "livekit_config": {"empty_timeout": 300},
        },
        {"id": HALF, "name": "Half-configured agent", "livekit_url": "wss://half.livekit.cloud"},
        {"id": DELETED, "exists": False},
    ],
    "test_profile": [
        {"id": 7, "name": "Jane", "information": {"customer_name": "Jane Doe"}},
    ],
}


class FakeClock:
    """A monotonic clock the test moves by hand, so lifecycles step without sleeping."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def start_runs(client: httpx.Client, *scenario_ids: int, **extra: Any) -> dict[str, Any]:
    """POST the documented LiveKit v2 body and return the 200 answer."""
    body = {"scenarios": [{"scenario": s} for s in scenario_ids], **extra}
    response = client.post(LIVEKIT, json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def get_json(client: httpx.Client, path: str, **params: Any) -> Any:
    # httpx replaces a query already in ``path`` when ``params`` is given, even if empty.
    response = client.get(path, params=params) if params else client.get(path)
    assert response.status_code == 200, response.text
    return response.json()
