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


@pytest.mark.demo_failure
@pytest.mark.cekura_scenario(39)
def test_deleted_scenario() -> None:
    """Errors on purpose: preflight finds scenario 39 missing, so none of its calls start."""
