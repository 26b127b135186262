"""Example conftest: keep a demo failure out of normal runs (copy the idea, not the file)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-demo-failures",
        action="store_true",
        help="also run the examples that fail on purpose, to see Cekura's failure report",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Deselecting here (rather than skipping) also keeps these scenarios out of the submission.
    if config.getoption("--run-demo-failures"):
        return
    keep = [item for item in items if item.get_closest_marker("demo_failure") is None]
    dropped = [item for item in items if item.get_closest_marker("demo_failure") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
