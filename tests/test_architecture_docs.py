"""docs/architecture.md and README.md's layout table name every module that exists."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pytest_cekura"
MODULES = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
EMULATOR = sorted(p.name for p in (PACKAGE / "emulator").glob("*.py") if p.name != "__init__.py")


def section(page: str, heading: str) -> str:
    text = (ROOT / page).read_text(encoding="utf-8")
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


@pytest.mark.parametrize("module", MODULES)
def test_every_module_has_an_owner_row(module: str) -> None:
    assert f"`{module}`" in section("docs/architecture.md", "## Who owns what")
    assert module in section("README.md", "## Layout")


@pytest.mark.parametrize("module", EMULATOR)
def test_every_emulator_module_is_in_a_layer(module: str) -> None:
    assert f"`{module}`" in section("docs/architecture.md", "## The emulator")
