"""Choosing the agent and passing per-run options to a LiveKit agent."""

from __future__ import annotations

import pytest

from pytest_cekura import CekuraResult


@pytest.mark.cekura_scenario(30, 31, agent=42)
def test_preview_agent(cekura_result: CekuraResult) -> None:
    """Runs against Cekura agent 42 (for the whole session: --cekura-agent 42)."""
    assert {run.scenario for run in cekura_result.runs} == {30, 31}


@pytest.mark.cekura_scenario(31, agent=42, publish_data_message={"locale": "de-DE"})
def test_german_locale() -> None:
    """publish_data_message is sent to the agent over the room's data channel."""


@pytest.mark.cekura_scenario(
    30,
    agent=42,
    # At most two of this request's calls at once, and Cekura mocks the inventory tool.
    concurrency_limit=2,
    mock_tool_names=["check_inventory"],
    livekit_data={
        # Dispatch to a pull request's own worker (registered under this name), not production's.
        "agent_name": "pharmacy-agent-pr-12",
        # Replaces agent 42's saved LiveKit Config (the room metadata), nothing merged; a
        # failure report shows it. Session-wide: --cekura-livekit-agent-name/-url/-config.
        "config": {"empty_timeout": 300, "locale": "de-DE"},
    },
)
def test_pull_request_worker(cekura_result: CekuraResult) -> None:
    """The whole LiveKit v2 request: tests sharing these options share one request."""
    assert cekura_result.success_rate == 1.0


@pytest.mark.demo_failure
@pytest.mark.cekura_scenario(39)
def test_deleted_scenario() -> None:
    """Errors on purpose: preflight finds scenario 39 missing, so none of its calls start."""
