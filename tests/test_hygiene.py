"""The test suite itself: it leaves nothing in the system temp folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent

#: Tests whose plugin sessions write to the system temp folder: an agent worker's log without
#: the cache provider (``cekura-*``), xdist's shared folder (``pytest-cekura-*``).
WRITERS = [
    "tests/test_agent_worker.py::test_worker_is_started_before_submission_and_stopped_after",
    "tests/test_agent_worker.py::test_xdist_controller_starts_one_worker",
    "tests/test_xdist.py::test_emulator_mode_shares_one_emulator_across_workers",
]


def test_the_suite_leaves_nothing_in_the_system_temp_folder(tmp_path: Path) -> None:
    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    env = {**os.environ, "TMPDIR": str(system_temp)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *WRITERS,
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "-q",
            f"--basetemp={tmp_path / 'base'}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    assert sorted(p.name for p in system_temp.iterdir()) == []
