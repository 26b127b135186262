"""Shared fixtures: a real emulator on loopback, and a pytester wired to it."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpcore  # noqa: F401  (see below)
import pytest

from pytest_cekura.emulator import Emulator, load_catalogue

# httpx maps httpcore's exceptions to its own with isinstance checks against the httpcore
# classes it saw first. In-process pytester runs drop modules first imported inside them, so
# httpcore must be imported here, once, or a later run's exceptions would escape unmapped.

#: A sentinel key: tests grep every output for it to prove it never leaks.
SENTINEL_KEY = "sk-cekura-SENTINEL-3f9b2c71d4e8"
#: Emulated call length is multiplied by this: a 30 s call takes 30 ms.
TIME_SCALE = 0.001
FAST = ("--cekura-poll-interval=0.02", "-p", "no:cacheprovider")
#: An emulator catalogue with one scenario per way a call can end.
PLAYBOOK = """
[[scenario]]
id = 30
name = "Refill a prescription"
outcome = "pass"

[[scenario]]
id = 31
name = "Billing dispute"
outcome = "fail"

[[scenario]]
id = 32
name = "Agent never joins"
outcome = "error"

[[scenario]]
id = 33
name = "Endless hold music"
outcome = "hang"

[[scenario]]
id = 34
name = "Coin toss"
outcome = "flaky"
success_probability = 0.5

[[test_profile]]
id = 7
name = "Jane"
information = { customer_name = "Jane Doe" }
"""


#: Retry backoff and the look-ups after an ambiguous POST take a twentieth of their real time
#: in the plugin sessions tests run (``session.ENV_DELAY_SCALE``); Retry-After is kept whole.
DELAY_SCALE = "0.05"


@pytest.fixture(autouse=True)
def _private_temp_and_short_delays(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test gets its own system temp folder, under pytest's basetemp (which pytest
    prunes), for itself and the pytest runs it starts (TMPDIR is inherited): nothing a plugin
    session leaves there (an agent worker's log without the cache provider, xdist's shared
    folder) piles up in /tmp. And the waits tests cannot shorten otherwise are scaled down."""
    folder = tmp_path_factory.mktemp("systemp", numbered=True)
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("PYTEST_CEKURA_DELAY_SCALE", DELAY_SCALE)
    # Run under GitHub Actions, the pytest runs tests start would append their summaries to
    # the real job's summary; tests that want one set these themselves.
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    # pytest leaves the short test summary untruncated on CI (CI / BUILD_NUMBER set): the
    # runs tests start would then repeat each error's message, and tests that count a
    # message would see a CI-only difference.
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    return folder


@pytest.fixture
def make_emulator(tmp_path: Path) -> Iterator[Callable[[str], Emulator]]:
    """Start an emulator whose catalogue is the given TOML text."""
    started: list[Emulator] = []

    def start(catalogue_toml: str = "") -> Emulator:
        path = tmp_path / f"catalogue-{len(started)}.toml"
        path.write_text(catalogue_toml)
        # Strict: the plugin's own tests must see the 400s the live service answers to forms
        # the spec forbids (bare ids on LiveKit v2, agent_id there, JSON-array run_ids).
        emulator = Emulator(
            load_catalogue(path), api_key=SENTINEL_KEY, time_scale=TIME_SCALE, strict=True
        )
        started.append(emulator.start())
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(make_emulator: Callable[[str], Emulator]) -> Emulator:
    return make_emulator("")


class Suite:
    """A pytester project pointed at an emulator through the environment, as a user would."""

    def __init__(self, pytester: pytest.Pytester, emulator: Emulator) -> None:
        self.pytester = pytester
        self.emulator = emulator

    def run(self, *args: str, subprocess: bool = False) -> pytest.RunResult:
        if subprocess:
            return self.pytester.runpytest_subprocess(*FAST, *args)
        return self.pytester.runpytest(*FAST, *args)

    def posts(self) -> int:
        return self.emulator.count("POST", "run_scenarios")

    def gets(self) -> int:
        return self.emulator.count("GET")


@pytest.fixture
def make_suite(
    pytester: pytest.Pytester,
    make_emulator: Callable[[str], Emulator],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str], Suite]:
    """A pytester project wired to a fresh emulator playing the given catalogue."""
    return lambda catalogue_toml: wire(pytester, make_emulator(catalogue_toml), monkeypatch)


@pytest.fixture
def suite(pytester: pytest.Pytester, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Suite:
    return wire(pytester, emulator, monkeypatch)


def wire(pytester: pytest.Pytester, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Suite:
    monkeypatch.setenv("CEKURA_API_KEY", SENTINEL_KEY)
    monkeypatch.setenv("CEKURA_API_URL", emulator.url)
    return Suite(pytester, emulator)
