"""``python -m pytest_cekura.emulator`` as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "pytest_cekura.emulator"]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CEKURA_API_KEY"}
    # The package may not be installed yet; make it importable from the checkout.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def test_help_lists_every_option() -> None:
    done = subprocess.run(
        [*COMMAND, "--help"], capture_output=True, text=True, env=environment(), timeout=30
    )
    assert done.returncode == 0, done.stderr
    for option in (
        "--host",
        "--port",
        "--catalogue",
        "--time-scale",
        "--api-key",
        "--success-rate-format",
    ):
        assert option in done.stdout


def test_bad_catalogue_exits_2_with_the_message(tmp_path: Path) -> None:
    catalogue = tmp_path / "c.toml"
    catalogue.write_text('[[scenario]]\nid = 31\noutcome = "maybe"\n', encoding="utf-8")
    done = subprocess.run(
        [*COMMAND, "--port", "0", "--catalogue", str(catalogue)],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=30,
    )
    assert done.returncode == 2
    assert "field 'outcome' has invalid value 'maybe'" in done.stderr
    assert done.stdout == ""


def standalone(catalogue: Path, key: str, **env: str) -> subprocess.Popen[str]:
    """The standalone emulator on a free port, its key from CEKURA_EMULATOR_API_KEY."""
    return subprocess.Popen(
        [*COMMAND, "--port", "0", "--catalogue", str(catalogue), "--time-scale", "0.001"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(CEKURA_EMULATOR_API_KEY=key, **env),
        # CI may start us with SIGINT ignored, which the child would inherit.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_standalone_serves_until_ctrl_c(tmp_path: Path) -> None:
    catalogue = tmp_path / "c.toml"
    catalogue.write_text('[[scenario]]\nid = 31\nname = "Billing dispute"\n', encoding="utf-8")
    key = "key-from-env-123"
    process = standalone(catalogue, key, CEKURA_API_KEY="real-key-never-used")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"Cekura emulator listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, f"unexpected first line {line!r}"
        response = httpx.post(
            f"{match[1]}/test_framework/v1/scenarios-external/run_scenarios_livekit_v2/",
            json={"scenarios": [{"scenario": 31}]},
            headers={"X-CEKURA-API-KEY": key},
        )
        assert response.status_code == 200
        assert response.json()["runs"][0]["scenario_name"] == "Billing dispute"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert key not in line + stdout + stderr


def _call(base: str, key: str, method: str, path: str, body: object = None) -> Any:
    """One request as Cekura's public docs show it: stdlib only, no code of ours."""
    request = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-CEKURA-API-KEY": key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
    return json.loads(text) if text else None


def test_the_public_docs_workflow_against_the_standalone_emulator(tmp_path: Path) -> None:
    """Start runs with both `scenarios` forms, poll the results until completed, list the
    runs by id, and cancel a call, exactly as a script written from the docs would."""
    catalogue = tmp_path / "c.toml"
    catalogue.write_text(
        '[[scenario]]\nid = 30\n\n[[scenario]]\nid = 31\noutcome = "fail"\n\n'
        '[[scenario]]\nid = 33\noutcome = "hang"\n',
        encoding="utf-8",
    )
    key = "docs-workflow-key"
    process = standalone(catalogue, key)
    try:
        assert process.stdout is not None
        base = process.stdout.readline().rsplit(" ", 1)[-1].strip()
        livekit = _call(
            base,
            key,
            "POST",
            "/test_framework/v1/scenarios-external/run_scenarios_livekit_v2/",
            {"scenarios": [{"scenario": 30}, {"scenario": 31}], "frequency": 2},
        )
        voice = _call(
            base,
            key,
            "POST",
            "/test_framework/v1/scenarios/run_scenarios/",
            {"agent_id": 1, "scenarios": [30, 33], "frequency": 1},
        )
        assert (len(livekit["runs"]), len(voice["runs"])) == (4, 2)
        deadline = time.monotonic() + 10
        result = _call(base, key, "GET", f"/test_framework/v1/results/{livekit['id']}/")
        while result["status"] not in {"completed", "failed"} and time.monotonic() < deadline:
            time.sleep(0.05)
            result = _call(base, key, "GET", f"/test_framework/v1/results/{livekit['id']}/")
        assert result["status"] == "completed"
        assert result["success_rate"] == 50.0  # a percent, as the live service sends it
        ids = ",".join(str(run["id"]) for run in livekit["runs"] + voice["runs"])
        runs = _call(base, key, "GET", f"/test_framework/v1/runs/bulk/?run_ids={ids}")
        by_scenario = {run["scenario"]: run for run in runs}
        assert len(runs) == 6
        assert by_scenario[30]["success"] is True
        assert by_scenario[31]["success"] is False
        assert by_scenario[30]["transcript_object"][0].keys() >= {"role", "content", "timestamp"}
        hanging = by_scenario[33]
        assert hanging["status"] not in {"completed", "failed", "timeout", "cancelled"}
        _call(base, key, "POST", f"/test_framework/v1/runs-external/{hanging['id']}/end_call/")
        after = _call(base, key, "GET", f"/test_framework/v1/runs-external/{hanging['id']}/")
        assert after["status"] == "cancelled"
    finally:
        process.kill()
        process.communicate()
