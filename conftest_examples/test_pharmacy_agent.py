"""Example Cekura tests for a pharmacy voice agent.

Run them offline against the built-in emulator::

    pytest conftest_examples --cekura-emulator

or against Cekura itself (costs credits) with ``CEKURA_API_KEY`` set and real scenario ids.
"""

from __future__ import annotations

import pytest

from pytest_cekura import CekuraResult


@pytest.mark.cekura_scenario(30, frequency=3)
def test_refill_flow() -> None:
    """No body needed: the test passes when all three calls succeed."""


@pytest.mark.cekura_scenario(30, 31, frequency=2)
def test_calls_stay_short(cekura_result: CekuraResult) -> None:
    """The body runs once Cekura's verdict is in, and may check more than success."""
    assert len(cekura_result.runs) == 4
    assert all(run.duration_s is not None and run.duration_s < 300 for run in cekura_result.runs)


@pytest.mark.cekura_scenario(32, frequency=5, min_success_rate=0.6)
def test_store_hours_mostly_right(cekura_result: CekuraResult) -> None:
    """A flaky scenario gated on a threshold: 3 of 5 successful calls are enough."""
    assert cekura_result.success_rate >= 0.6


@pytest.mark.cekura_scenario(30, test_profile=7)
def test_refill_for_known_customer(cekura_result: CekuraResult) -> None:
    """A test profile gives the simulated caller (and your agent) a customer record."""
    (run,) = cekura_result.runs
    assert run.test_profile_data is not None
    assert run.test_profile_data["information"]["rx_number"] == "RX-5521"


@pytest.mark.cekura_scenario(
    30,
    frequency=3,
    gates={
        "Latency": "p95 <= 1200",
        "Instruction Following": "pass_rate >= 0.8",
        "Sentiment": {"in": ["positive", "neutral"]},
    },
)
def test_refill_within_budgets(cekura_result: CekuraResult) -> None:
    """Metric gates: the calls must succeed and their metrics stay in bounds. It shares
    test_refill_flow's request (gates are not sent), so it costs no extra call."""
    latency = cekura_result.metric("Latency")
    assert latency.count == 3
    assert latency.p95 is not None
    assert latency.p95 <= 1200


@pytest.mark.demo_failure
@pytest.mark.cekura_scenario(34, frequency=3, gates={"Latency": "p95 <= 1200"})
def test_insurance_lookup_is_quick() -> None:
    """Fails on purpose (see --run-demo-failures): every call succeeds, but the latency p95
    breaks the gate; the report names the slowest runs with their links."""


@pytest.mark.demo_failure
@pytest.mark.cekura_scenario(33, frequency=2)
def test_cancel_after_pickup() -> None:
    """Fails on purpose (see --run-demo-failures) to show the report for a misbehaving agent."""
