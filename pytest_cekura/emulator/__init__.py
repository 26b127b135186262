"""A local emulator of the Cekura REST API, for offline, free and deterministic test runs.

Use it in-process::

    from pytest_cekura.emulator import Emulator, load_catalogue

    with Emulator(load_catalogue("cekura-catalogue.toml")) as emulator:
        ...  # talk to emulator.url with header X-CEKURA-API-KEY: emulator-key

or standalone: ``python -m pytest_cekura.emulator --port 8765``. Break requests on purpose
with ``[[fault]]`` tables, ``emulator.inject(...)`` or ``POST /_emulator/faults``.
"""

from __future__ import annotations

from pytest_cekura.emulator.catalogue import (
    AgentEntry,
    Catalogue,
    CatalogueError,
    FaultRule,
    ScenarioEntry,
    TestProfileEntry,
    load_catalogue,
    parse_fault,
)
from pytest_cekura.emulator.server import Emulator
from pytest_cekura.emulator.state import RequestRecord

__all__ = [
    "AgentEntry",
    "Catalogue",
    "CatalogueError",
    "Emulator",
    "FaultRule",
    "RequestRecord",
    "ScenarioEntry",
    "TestProfileEntry",
    "load_catalogue",
    "parse_fault",
]
