"""The API key never appears in output, reports, tracebacks or logs."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

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


def outputs_of(result: pytest.RunResult, *files: Path) -> dict[str, str]:
    found = {"stdout": result.stdout.str(), "stderr": result.stderr.str()}
    found.update({file.name: file.read_text() for file in files if file.exists()})
    return found


@pytest.mark.parametrize(
    ("key", "described"),
    [
        ("KEY\nmore-sk-cekura-SENTINEL", "a newline at position 4"),
        ("sk-cekura\rSENTINEL", "a carriage return at position 10"),
        ("sk-cekura SENTINEL", "a space at position 10"),
        ("sk-cekura-\x01SENTINEL", "a control character (U+0001) at position 11"),
        ("sk-cekura-SENTINEL\u00e9x", "a non-ASCII character at position 19"),
    ],
    ids=["newline", "carriage-return", "space", "control", "non-ascii"],
)
def test_key_with_a_bad_character_is_one_usage_error_naming_only_the_character(
    suite: Suite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key: str, described: str
) -> None:
    """Issue #14 item 11: httpx's LocalProtocolError quoted such a key in stdout, JUnit XML and
    the JSON report, and claimed the request "may have reached Cekura"."""
    monkeypatch.setenv("CEKURA_API_KEY", key)
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(): pass
        """
    )
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    result = suite.run(
        "-vv", f"--junitxml={junit}", f"--cekura-report={report}", "--tb=long", subprocess=True
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = (
        f"ERROR: pytest-cekura: the CEKURA_API_KEY environment variable contains {described}; "
        "an API key holds only visible ASCII characters: copy it again from Cekura's settings "
        "and set CEKURA_API_KEY without it"
    )
    assert result.stderr.str().count("ERROR: ") == 1
    assert expected in result.stderr.str()
    assert suite.emulator.requests == []  # refused before anything was sent
    for name, text in outputs_of(result, junit, report).items():
        for part in ("SENTINEL", "more"):
            assert part not in text, f"part of the key leaked into {name}"


def test_emulator_mode_ignores_a_malformed_key_it_never_sends(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CEKURA_API_KEY", "KEY\nmore")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(): pass
        """
    )
    pytester.runpytest("--cekura-emulator", "-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize("how", ["environment", "option"])
def test_url_with_credentials_is_refused_without_printing_them(
    suite: Suite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    """Issue #14 item 12: the password was printed in the -v header and the report's "api"."""
    url = suite.emulator.url.replace("http://", "http://user:hunter2-pw@")
    args = ["-v", f"--cekura-report={tmp_path / 'report.json'}"]
    if how == "environment":
        monkeypatch.setenv("CEKURA_API_URL", url)
        source = "environment variable CEKURA_API_URL"
    else:
        args.append(f"--cekura-url={url}")
        source = "--cekura-url"
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(): pass
        """
    )
    result = suite.run(*args, subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        result.stderr.lines.count(
            f"ERROR: {source} contains credentials (user:password@ before the "
            "host): remove them; Cekura authenticates with the CEKURA_API_KEY environment variable"
        )
        == 1
    ), result.stderr.str()
    assert suite.emulator.requests == []
    for name, text in outputs_of(result, tmp_path / "report.json").items():
        assert "hunter2" not in text, f"the URL's password leaked into {name}"


def test_key_echoed_encoded_in_an_error_body_is_redacted(
    suite: Suite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue #14 item 13. The emulator never echoes the key, so a stand-in server does: every
    request gets a 401 whose body holds the key raw, URL-encoded and base64-encoded (alone and
    inside an HTTP Basic credential)."""
    forms = echoed_forms(SENTINEL_KEY)
    with echoing_server(forms) as url:
        monkeypatch.setenv("CEKURA_API_URL", url)
        suite.pytester.makepyfile(
            """
            import pytest

            @pytest.mark.cekura_scenario(30)
            def test_a(): pass
            """
        )
        junit = tmp_path / "junit.xml"
        result = suite.run("-vv", "--tb=long", f"--junitxml={junit}", subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "Cekura rejected the API key" in result.stderr.str()
    assert "echo:" in result.stderr.str()  # the body was printed, redacted
    for name, text in outputs_of(result, junit).items():
        for form in forms:
            assert form not in text, f"the key leaked into {name} as {form!r}"


def echoed_forms(key: str) -> list[str]:
    return [
        key,
        quote(key, safe=""),
        base64.b64encode(key.encode()).decode(),
        base64.urlsafe_b64encode(key.encode()).decode().rstrip("="),
        base64.b64encode(f"user:{key}".encode()).decode(),
    ]


@contextlib.contextmanager
def echoing_server(forms: list[str]) -> Iterator[str]:
    body = json.dumps({"detail": "invalid API key", "echo:": forms}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_any(self) -> None:
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_any  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--cekura-url", "{url}/{key}"),
        ("--cekura-url", "{url}/?api_key={quoted}"),
        ("--cekura-dashboard-url", "https://app.example/{key}/results/{{result_id}}"),
    ],
    ids=["url-path", "url-query-encoded", "dashboard-template"],
)
def test_key_inside_an_option_value_is_refused_before_anything_is_sent(
    suite: Suite, tmp_path: Path, option: str, value: str
) -> None:
    """Found by a stranger's review: a key pasted into the URL's path (or a dashboard
    template) was printed in the -v header, the JSON report's "api" and the HTML report."""
    given = value.format(url=suite.emulator.url, key=SENTINEL_KEY, quoted=quote(SENTINEL_KEY))
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(): pass
        """
    )
    report, html = tmp_path / "report.json", tmp_path / "report.html"
    result = suite.run(
        "-v", f"{option}={given}", f"--cekura-report={report}", f"--cekura-html={html}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = (
        f"ERROR: pytest-cekura: {option} contains the value of CEKURA_API_KEY: remove it; "
        "Cekura authenticates with the CEKURA_API_KEY environment variable alone"
    )
    assert result.stderr.str().count("ERROR: ") == 1
    assert expected in result.stderr.str()
    assert suite.emulator.requests == []
    for name, text in outputs_of(result, report, html).items():
        assert SENTINEL_KEY not in text, f"the API key leaked into {name}"
        assert quote(SENTINEL_KEY) not in text, f"the API key leaked into {name}"
