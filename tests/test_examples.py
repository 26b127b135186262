"""The shipped examples run green on the emulator, as the README promises, and never rot."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "conftest_examples"


def run_examples(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        str(EXAMPLES), "--cekura-emulator", "-p", "no:cacheprovider", *args
    )


def test_examples_pass_on_the_emulator(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CEKURA_API_KEY", raising=False)  # the emulator needs no key
    result = run_examples(pytester)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=4, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*= cekura =*",
            "cekura: 4 test(s) (4 passed) over 13 run(s); API requests: 4 POST start runs, *",
        ]
    )


def test_demo_failure_shows_the_failure_report(pytester: pytest.Pytester) -> None:
    result = run_examples(pytester, "--run-demo-failures", "-k", "cancel_after_pickup")
    result.assert_outcomes(failed=1, deselected=4)
    result.stdout.fnmatch_lines(
        [
            "*Cekura: 0 of 2 runs succeeded (0%); this test needs 100%.",
            '*scenario 33 "Cancel an order after pickup" · completed, not successful',
            "*link: http://127.0.0.1:*/_emulator/dashboard/results/*",
        ]
    )
