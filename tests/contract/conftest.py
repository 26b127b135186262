"""Fixtures of the contract tests: the corrected spec, and an emulator whose every answer is
recorded so a test can hold each one against the spec."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pytest_cekura.emulator import Emulator
from pytest_cekura.emulator.catalogue import parse_catalogue

from .spec import Contract, contract

KEY = "emulator-key"

#: One scenario per way a call can end, an agent per way its LiveKit settings can be kept.
CATALOGUE = {
    "scenario": [
        {"id": 30, "name": "Refill", "outcome": "pass", "agent": 42},
        {"id": 31, "name": "Billing dispute", "outcome": "fail", "agent": 42},
        {"id": 32, "name": "Agent never joins", "outcome": "error", "agent": 42},
        {"id": 33, "name": "Endless hold", "outcome": "hang", "agent": 42},
        {"id": 34, "name": "Coin toss", "outcome": "flaky", "success_probability": 0.5},
        {"id": 35, "name": "Slow grader", "outcome": "pass", "evaluation_delay_s": 60},
        {"id": 36, "name": "Project agent", "outcome": "pass", "agent": 44},
        {"id": 39, "name": "Deleted", "exists": False},
    ],
    "agent": [
        {
            "id": 42,
            "name": "Pharmacy agent",
            "livekit_url": "wss://pharmacy.livekit.cloud",
            "livekit_api_key": "APIxxxxxxxx",
            "livekit_api_secret": "secret-value",
            "livekit_agent_name": "pharmacy-agent",
            "livekit_config": {"empty_timeout": 300},
        },
        {"id": 43, "name": "Half-configured agent", "livekit_url": "wss://half.livekit.cloud"},
        {
            "id": 44,
            "name": "Project credentials",
            "livekit_url": "wss://p.livekit.cloud",
            "livekit_api_key": "APIproject",
            "livekit_api_secret": "project-secret",
            "livekit_credentials": "project",
            "project": 77,
        },
        {"id": 45, "name": "Websocket agent", "provider": "websocket"},
        {"id": 49, "exists": False},
    ],
    "test_profile": [{"id": 7, "name": "Jane", "information": {"customer_name": "Jane Doe"}}],
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    query: dict[str, str]
    request_body: Any
    status: int
    body: bytes


class Recorder:
    """An httpx client for the emulator that keeps every exchange."""

    def __init__(self, emulator: Emulator) -> None:
        self.exchanges: list[Exchange] = []
        self.client = httpx.Client(
            base_url=emulator.url,
            headers={"X-CEKURA-API-KEY": KEY},
            event_hooks={"response": [self._keep]},
        )

    def _keep(self, response: httpx.Response) -> None:
        response.read()
        request = response.request
        body = json.loads(request.content) if request.content else None
        self.exchanges.append(
            Exchange(
                request.method,
                request.url.path,
                dict(request.url.params),
                body,
                response.status_code,
                response.content,
            )
        )

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params or None)

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.client.post(path, json=body) if body is not None else self.client.post(path)


@pytest.fixture(scope="session")
def spec() -> Contract:
    return contract()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def contract_emulator(clock: FakeClock) -> Iterator[Emulator]:
    with Emulator(parse_catalogue(CATALOGUE), clock=clock, time_scale=1.0, strict=True) as emu:
        yield emu


@pytest.fixture
def recorder(contract_emulator: Emulator) -> Iterator[Recorder]:
    recorder = Recorder(contract_emulator)
    yield recorder
    recorder.client.close()
