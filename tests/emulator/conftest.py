"""Fixtures for the emulator tests: a fake clock and an emulator reached over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pytest_cekura.emulator import Catalogue, Emulator
from pytest_cekura.emulator.catalogue import parse_catalogue

from .helpers import API_KEY, CATALOGUE, TLS, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def catalogue() -> Catalogue:
    return parse_catalogue(CATALOGUE, source="test-catalogue")


@pytest.fixture
def emulator(catalogue: Catalogue, clock: FakeClock) -> Iterator[Emulator]:
    with Emulator(catalogue, clock=clock, time_scale=1.0) as emu:
        yield emu


@pytest.fixture
def api(emulator: Emulator) -> Iterator[httpx.Client]:
    headers = {"X-CEKURA-API-KEY": API_KEY}
    with httpx.Client(base_url=emulator.url, headers=headers, verify=TLS) as client:
        yield client
