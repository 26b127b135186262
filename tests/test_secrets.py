"""The API key never appears in output, reports, tracebacks or logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SENTINEL_KEY, Suite


def test_sentinel_key_appears_in_no_output_or_report(suite: Suite, tmp_path: Path) -> None:
    suite.pytester.makepyfile(
        """
        import logging
        import pytest

        @pytest.mark.cekura_scenario(30, 31)
        def test_passes(cekura_result, cekura_client):
            logging.getLogger("test").debug("client %r", cekura_client)

        @pytest.mark.cekura_scenario(32)
        def test_body_blows_up(cekura_result, cekura_client):
            client = cekura_client
            headers = client._http.headers
            raise RuntimeError(f"boom with {client!r} and {headers!r}")

        def test_lookup_of_missing_result_fails(cekura_client):
            cekura_client.get_result(999999)
        """
    )
    junit = tmp_path / "junit.xml"
    report = tmp_path / "cekura.json"
    baseline = tmp_path / "baseline.json"
    result = suite.run(
        f"--cekura-report={report}",
        f"--cekura-baseline={baseline}",
        "-vv",
        "--tb=long",
        "--showlocals",
        "-rA",
        "--log-level=DEBUG",
        "-o",
        "log_cli=true",
        f"--junitxml={junit}",
        subprocess=True,
    )
    result.assert_outcomes(passed=1, failed=2)
    # The session really talked to Cekura with the key: otherwise this test proves nothing.
    assert suite.posts() == 1
    outputs = {
        "stdout": result.stdout.str(),
        "stderr": result.stderr.str(),
        "junit": junit.read_text(),
        "json report": report.read_text(),
        "baseline": baseline.read_text(),
    }
    assert "HTTP Request: GET" in outputs["stdout"]  # httpx's own debug logging was on
    for name, text in outputs.items():
        assert SENTINEL_KEY not in text, f"the API key leaked into {name}"


def test_emulator_mode_never_uses_the_users_real_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CEKURA_API_KEY", SENTINEL_KEY)
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(cekura_client):
            assert cekura_client._key.reveal() != {SENTINEL_KEY!r}
        """
    )
    result = pytester.runpytest("--cekura-emulator", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
