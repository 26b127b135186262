"""The README's quick start stays true: CI runs its test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n\s*(.+?)\n\s*```", quick_start)


def test_quick_start_is_two_commands() -> None:
    install_and_examples, install_and_tests = quick_start_commands()
    assert "conftest_examples --cekura-emulator" in install_and_examples
    assert install_and_tests.endswith(".venv/bin/pytest")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, test_command = quick_start_commands()
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
