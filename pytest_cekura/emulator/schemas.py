"""JSON Schemas of the emulator's catalogue and fault rules, and of ``cekura_*.toml`` suites
(``pytest_cekura.suite_toml``), for editor completion.

The published copies live in ``docs/schemas/``; regenerate them after changing a table, a
fault action or a ``cekura_scenario`` keyword with::

    python -m pytest_cekura.emulator.schemas docs/schemas

(``tests/emulator/test_emulator_schemas.py`` and ``tests/test_toml_suites.py`` fail while they
are out of date). TOML editors
that read JSON Schemas (e.g. Even Better TOML / taplo) pick one up from a first line
``#:schema ./docs/schemas/catalogue.schema.json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from pytest_cekura.emulator.catalogue_tables import CatalogueFile
from pytest_cekura.emulator.fault_actions import AnyFault
from pytest_cekura.suite_toml import json_schema as toml_suite_schema

_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_documents() -> dict[str, dict[str, Any]]:
    """The published schemas, by file name."""
    catalogue = CatalogueFile.model_json_schema()
    # A rule is sent to POST /_emulator/faults as one object or a list of them.
    faults = TypeAdapter(AnyFault | list[AnyFault]).json_schema()
    return {
        "catalogue.schema.json": {
            "$schema": _DIALECT,
            **catalogue,
            "title": "pytest-cekura emulator catalogue",
        },
        "faults.schema.json": {
            "$schema": _DIALECT,
            **faults,
            "title": "pytest-cekura emulator fault rules (one rule or a list)",
        },
        "toml-suite.schema.json": {
            "$schema": _DIALECT,
            **toml_suite_schema(),
            "title": "pytest-cekura TOML suite (cekura_*.toml)",
        },
    }


def render(document: dict[str, Any]) -> str:
    """A schema as its file holds it: stable key order, two-space indent, final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    directory = Path(args[0] if args else "docs/schemas")
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in schema_documents().items():
        (directory / name).write_text(render(document), encoding="utf-8")
        print(directory / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
