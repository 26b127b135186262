"""The API key never appears in output, reports, tracebacks or logs."""

from __future__ import annotations

import re
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


@pytest.mark.parametrize("verbosity", ["-q", "-vv"])
def test_sentinel_key_appears_in_no_traceback_when_requests_break(
    suite: Suite, tmp_path: Path, verbosity: str
) -> None:
    """Transport errors, timeouts, unreadable answers and error statuses, each raised in a
    test body at --tb=long --showlocals, with httpx and httpcore debug logs on."""
    for action, extra in [
        ("drop_before", {}),
        ("drop_after", {"drop_mode": "reset"}),
        ("slow", {"delay_s": 1.0}),
        ("malformed_json", {}),
        ("error_before", {"status": 500}),
        ("error_before", {"status": 401}),
        ("drop_before", {}),
    ]:
        suite.emulator.inject("start", action, **extra)  # type: ignore[arg-type]
    suite.pytester.makepyfile(
        """
        import pytest

        BODY = {"name": "secrets", "scenarios": [{"scenario": 30}], "frequency": 1}

        @pytest.mark.parametrize("fault", ["dropped", "reset", "timeout", "json", "500", "401"])
        def test_start_breaks(fault, cekura_client):
            cekura_client.start_runs("livekit", BODY)

        def test_httpx_error_with_its_own_frames(cekura_client):
            # The plugin's errors drop httpx's chain; a raw httpx error shows its frames, whose
            # locals include Request objects that carry the key header.
            path = "/test_framework/v1/scenarios-external/run_scenarios_livekit_v2/"
            cekura_client._http.post(path, json=BODY)
        """
    )
    junit = tmp_path / "junit.xml"
    result = suite.run(
        verbosity,
        "--tb=long",
        "--showlocals",
        "-rA",
        "--log-level=DEBUG",
        "-o",
        "log_cli=true",
        "--cekura-request-timeout=0.3",
        f"--junitxml={junit}",
        subprocess=True,
    )
    result.assert_outcomes(failed=7)
    result.stdout.fnmatch_lines(
        [
            "*TransportError*RemoteProtocolError*",
            "*TransportError*ReadError*",
            "*TransportError*ReadTimeout*",
            "*ProtocolError*not JSON*",
            "*ServerError*HTTP 500*",
            "*AuthError*HTTP 401*",
            "*httpx.RemoteProtocolError*",
        ]
    )
    # --showlocals printed httpx's request objects (the ones carrying the key header).
    assert re.search(r"request +=.*<Request\('POST'", result.stdout.str())
    assert "send_request_headers" in result.stdout.str()  # httpcore's debug log was on
    outputs = {
        "stdout": result.stdout.str(),
        "stderr": result.stderr.str(),
        "junit": junit.read_text(),
    }
    for name, text in outputs.items():
        assert SENTINEL_KEY not in text, f"the API key leaked into {name}"


def test_sentinel_key_appears_nowhere_when_cekura_rejects_it(suite: Suite) -> None:
    suite.emulator.inject("any", "error_before", status=401, times=0)
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(): pass
        """
    )
    result = suite.run("-vv", "--tb=long", "--showlocals", "--log-level=DEBUG", subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "Cekura rejected the API key" in result.stderr.str()
    assert SENTINEL_KEY not in result.stdout.str() + result.stderr.str()
