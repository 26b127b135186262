"""Issue #14 items 7-10: a session-level stop reads the same with and without xdist (one
message, exit status 4), a key rejected while polling stops polling and is reported once, an
unreachable Cekura is one line, and a replacement xdist worker keeps the session's deadline."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import SENTINEL_KEY, Suite

FOUR_TESTS = """
import pytest

@pytest.mark.parametrize("i", range(4))
@pytest.mark.cekura_scenario(30, frequency=2)
def test_a(i): pass
"""
MISSING_KEY = (
    "ERROR: pytest-cekura: the CEKURA_API_KEY environment variable is not set, and the "
    "selected tests need Cekura. Set it to your Cekura API key, or run offline against the "
    "built-in emulator with --cekura-emulator, or deselect these tests with -m 'not "
    "cekura_scenario'."
)
WRONG_KEY = (
    "ERROR: pytest-cekura: Cekura rejected the API key (GET /test_framework/v1/scenarios/ "
    "-> HTTP 401: *). Check the CEKURA_API_KEY environment variable (and --cekura-url / "
    "CEKURA_API_URL if you use another Cekura deployment). The session stopped before any "
    "call was started."
)
OVER_BUDGET = (
    "ERROR: pytest-cekura: this session would start 2 calls in 1 request(s), more than the "
    "limit of 1 (--cekura-max-runs / cekura_max_runs). Nothing was started: select fewer "
    "tests with -k or -m, or raise the limit."
)
UNREACHABLE = (
    "ERROR: pytest-cekura: cannot reach Cekura at http://127.0.0.1:9 (ConnectError: [Errno "
    "111] Connection refused); nothing was started. Check --cekura-url / CEKURA_API_URL (or "
    "unset it for Cekura's own API), and your network or proxy."
)
XDIST = ["-n", "2", "-p", "no:randomly"]


def assert_no_key_in(*files: Path) -> None:
    for file in files:
        if file.exists():
            assert SENTINEL_KEY not in file.read_text(), f"the API key leaked into {file.name}"


def error_lines(result: pytest.RunResult) -> list[str]:
    """What pytest printed as errors: its "ERROR: ..." lines and any internal error."""
    text = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in text, text
    assert SENTINEL_KEY not in text
    return [line for line in result.stderr.lines if line.startswith("ERROR")]


@pytest.mark.parametrize(
    ("problem", "expected"),
    [("missing key", MISSING_KEY), ("wrong key", WRONG_KEY), ("over budget", OVER_BUDGET)],
)
def test_session_stop_reads_the_same_with_and_without_xdist(
    suite: Suite, monkeypatch: pytest.MonkeyPatch, problem: str, expected: str
) -> None:
    """Item 8: under xdist these were "INTERNALERROR ... assert not crashitem", exit status 3,
    without the plugin's message."""
    suite.pytester.makepyfile(FOUR_TESTS)
    args = []
    if problem == "missing key":
        monkeypatch.delenv("CEKURA_API_KEY")
    elif problem == "wrong key":
        monkeypatch.setenv("CEKURA_API_KEY", "sk-cekura-not-this-one")
    else:
        args.append("--cekura-max-runs=1")
    junit = suite.pytester.path / "junit.xml"
    serial = suite.run(*args, f"--junitxml={junit}", subprocess=True)
    assert_no_key_in(junit)
    distributed = suite.run(*args, *XDIST, f"--junitxml={junit}", subprocess=True)
    assert_no_key_in(junit)
    for result in (serial, distributed):
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        lines = error_lines(result)
        assert len(lines) == 1, lines
        pytest.LineMatcher(lines).fnmatch_lines([expected])
    assert error_lines(serial) == error_lines(distributed)
    assert suite.posts() == 0


@pytest.mark.parametrize(
    ("mode", "preflight"), [("serial", True), ("xdist", True), ("serial", False)]
)
def test_unreachable_cekura_is_one_line_and_nothing_more_is_tried(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    mode: str,
    preflight: bool,
) -> None:
    """Item 10: this took 24 s, printed 10 error blocks and tried 20 more POSTs after the
    preflight look-ups had already failed to connect."""
    monkeypatch.setenv("CEKURA_API_KEY", SENTINEL_KEY)
    pytester.makepyfile(
        FOUR_TESTS
        + "\n@pytest.mark.cekura_scenario(31, frequency=3)\ndef test_b(): pass\n"
        + "\n@pytest.mark.cekura_scenario(32, frequency=4)\ndef test_c(): pass\n"
    )
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "--cekura-url=http://127.0.0.1:9",
        f"--cekura-report={report}",
        f"--junitxml={junit}",
        "-p",
        "no:cacheprovider",
        *(XDIST if mode == "xdist" else []),
        *([] if preflight else ["--cekura-no-preflight"]),
    )
    elapsed = time.monotonic() - started
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert error_lines(result) == [UNREACHABLE]
    assert_no_key_in(junit, report)
    requests = json.loads(report.read_text())["requests"]
    if preflight:
        assert set(requests) == {"GET preflight"}, requests  # no POST was even tried
    else:
        # The first of three groups' POST, with its retries (it never connected), no other.
        assert set(requests) == {"POST start runs"}, requests
        assert requests["POST start runs"] <= 5
    # One look-up's retries (at most 0.5 + 1 + 2 + 4 s of backoff), plus start-up on a busy
    # machine; the old behaviour took 24 s.
    assert elapsed < 20, elapsed


@pytest.mark.parametrize("order", ["collection", "finish"])
def test_key_rejected_while_polling_stops_polling_and_is_reported_once(
    suite: Suite, order: str
) -> None:
    """Item 9: a 401 on the bulk poll was polled until --cekura-timeout, then reported once
    per test. In finish order nothing waits for runs that will no longer change."""
    suite.emulator.inject("bulk", "error_before", status=401, times=0)
    suite.pytester.makepyfile(FOUR_TESTS)
    report, junit = suite.pytester.path / "report.json", suite.pytester.path / "junit.xml"
    started = time.monotonic()
    result = suite.run(
        "--cekura-timeout=60",
        f"--cekura-order={order}",
        "-p",
        "no:randomly",
        f"--cekura-report={report}",
        f"--junitxml={junit}",
        subprocess=True,
    )
    elapsed = time.monotonic() - started
    assert_no_key_in(report, junit)
    xml = junit.read_text()
    assert xml.count("<error ") == 4
    # Each error's message attribute and text: the short reference, not the whole story.
    assert xml.count("Cekura rejected the API key while polling: see") == 8
    assert "while the runs were being polled" not in xml
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.assert_outcomes(errors=4)
    out = result.stdout.str()
    assert out.count("Cekura rejected the API key while the runs were being polled") == 1
    result.stdout.fnmatch_lines(
        [
            "*= cekura session error =*",
            "pytest-cekura: Cekura rejected the API key while the runs were being polled (GET "
            "/test_framework/v*/runs/bulk/ -> HTTP 401: *); polling stopped and the tests "
            "still waiting error. Check the CEKURA_API_KEY environment variable *",
        ]
    )
    short = (
        "Cekura rejected the API key while polling: see the session error at the end of the output"
    )
    assert out.count(short) == 4  # each test: one line pointing at the session error
    assert suite.emulator.count("GET", "runs/bulk") == 1  # stopped at the first 401
    assert elapsed < 30, elapsed  # not the 60 s timeout
    assert SENTINEL_KEY not in out + result.stderr.str()


def test_key_rejected_while_polling_reads_the_same_under_xdist(suite: Suite) -> None:
    suite.emulator.inject("bulk", "error_before", status=401, times=0)
    suite.pytester.makepyfile(FOUR_TESTS)
    result = suite.run("--cekura-timeout=60", *XDIST, subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.assert_outcomes(errors=4)
    out = result.stdout.str()
    assert "INTERNALERROR" not in out
    assert out.count("Cekura rejected the API key while the runs were being polled") == 1
    # Each worker stops at its own first 401: at most one bulk GET per worker.
    assert suite.emulator.count("GET", "runs/bulk") <= 2 + 1  # + the controller's clean-up look


def test_replacement_worker_keeps_the_sessions_deadline(make_suite: Callable[[str], Suite]) -> None:
    """Item 7: a worker that crashed and was replaced started a fresh full deadline."""
    suite = make_suite('[[scenario]]\nid = 33\noutcome = "hang"\n')
    suite.pytester.makepyfile(
        test_a_crash="""
        import os, time

        def test_crash():
            time.sleep(6)
            os._exit(1)  # the worker dies; xdist starts a replacement
        """,
        test_b_hang="""
        import pytest

        @pytest.mark.parametrize("i", range(2))
        @pytest.mark.cekura_scenario(33)
        def test_hang(i): pass
        """,
    )
    result = suite.run(
        "--cekura-timeout=6",
        "-n",
        "1",
        "-p",
        "no:randomly",
        "--durations=0",
        "--durations-min=0",
        subprocess=True,
    )
    result.assert_outcomes(errors=2, failed=1)  # the crashed test is reported failed
    result.stdout.fnmatch_lines(["*worker 'gw0' crashed while running*test_crash*"])
    result.stdout.fnmatch_lines(["*replacing crashed worker gw0*"])
    # The session's deadline (6 s after the controller configured its first worker) passed
    # before the crash, so the replacement's tests must not wait: their setup (the wait for
    # Cekura) takes no time. With a fresh deadline of its own, each waited about 6 s.
    waits = [
        float(match[1])
        for line in result.stdout.lines
        if (match := re.match(r"([0-9.]+)s setup +test_b_hang.py::test_hang", line))
    ]
    assert len(waits) == 2, result.stdout.str()
    assert max(waits) < 2.0, waits
    result.stdout.fnmatch_lines(["*why: not finished by the deadline*"])
