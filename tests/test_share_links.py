"""--cekura-share-links[=DAYS]: shareable result links, opt-in (issue #17 item 5)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import SENTINEL_KEY, Suite
from pytest_cekura.client import CekuraClient
from pytest_cekura.emulator import Emulator
from pytest_cekura.emulator.records import RequestRecord
from pytest_cekura.share_links import create_links, public_repository

# Two request shapes, so two results: one link each.
SUITE = """
import pytest

@pytest.mark.cekura_scenario(30)
def test_good(): pass

@pytest.mark.cekura_scenario(31, frequency=2)
def test_bad(): pass
"""


@pytest.fixture
def share_suite(make_suite: Callable[[str], Suite], monkeypatch: pytest.MonkeyPatch) -> Suite:
    # Run on a public GitLab project's CI, the plugin would (rightly) make no links.
    monkeypatch.delenv("CI_PROJECT_VISIBILITY", raising=False)
    suite = make_suite('[[scenario]]\nid = 31\noutcome = "fail"\n')
    suite.pytester.makepyfile(SUITE)
    return suite


def share_posts(suite: Suite) -> list[RequestRecord]:
    return [
        r
        for r in suite.emulator.requests
        if r.method == "POST" and r.path.endswith("/create_shareable_link_token/")
    ]


def expiry_days(record: RequestRecord) -> float:
    expire_at = datetime.fromisoformat(record.body["expire_at"].replace("Z", "+00:00"))
    return (expire_at - datetime.now(UTC)) / timedelta(days=1)


def test_one_link_per_result_in_the_summary_and_json_report(
    share_suite: Suite, tmp_path: Path
) -> None:
    summary, report = tmp_path / "summary.md", tmp_path / "report.json"
    result = share_suite.run(
        f"--cekura-summary-md={summary}", f"--cekura-report={report}", "--cekura-share-links"
    )
    result.assert_outcomes(passed=1, failed=1)
    # The header warns whenever links are made.
    result.stdout.fnmatch_lines(
        ["cekura: shareable result links, valid 7 day(s) *anyone with a link can read the "
         "transcripts and hear the recordings*never use it on a public repository"]
    )  # fmt: skip
    posts = share_posts(share_suite)
    tests = json.loads(report.read_text())["tests"]
    result_ids = {test["result_id"] for test in tests}
    assert len(result_ids) == 2
    assert sorted(int(r.path.split("/")[-3]) for r in posts) == sorted(result_ids)
    assert all(6.9 < expiry_days(r) <= 7 for r in posts)
    for test in tests:
        link = f"https://dashboard.cekura.ai/share/results/{test['result_id']}?token="
        assert test["share_link"].startswith(link)
    text = summary.read_text()
    bad = next(test for test in tests if test["nodeid"].endswith("test_bad"))
    assert f"[0/2]({bad['share_link']})" in text  # the run counts open the shared result
    assert f"[{bad['result_id']}]({bad['share_link']})" in text
    assert "anyone with one can read the transcripts" in text


def test_days_given_and_ini(share_suite: Suite) -> None:
    share_suite.run("--cekura-share-links=1").assert_outcomes(passed=1, failed=1)
    assert all(0.9 < expiry_days(r) <= 1 for r in share_posts(share_suite))
    share_suite.pytester.makeini("[pytest]\ncekura_share_links = 30\n")
    share_suite.run().assert_outcomes(passed=1, failed=1)
    assert sorted(round(expiry_days(r)) for r in share_posts(share_suite)) == [1, 1, 30, 30]


def test_without_the_option_no_link_is_made(share_suite: Suite, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    result = share_suite.run(f"--cekura-summary-md={summary}")
    result.assert_outcomes(passed=1, failed=1)
    assert share_posts(share_suite) == []
    assert "shareable" not in result.stdout.str() + summary.read_text()


def test_a_link_that_cannot_be_made_is_a_warning_not_a_failure(
    share_suite: Suite, tmp_path: Path
) -> None:
    # The share POST is a "result" route for faults; the session reads no result detail.
    share_suite.emulator.inject("result", "error_before", status=403, times=1)
    report = tmp_path / "report.json"
    result = share_suite.run("--cekura-share-links", f"--cekura-report={report}")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # test_bad's own failure, nothing more
    result.stdout.fnmatch_lines(
        ["pytest-cekura warning: no shareable link for result * (*HTTP 403*); the summary "
         "links to Cekura's dashboard instead"]
    )  # fmt: skip
    links: list[Any] = [test["share_link"] for test in json.loads(report.read_text())["tests"]]
    assert links.count(None) == 1  # the other result still has its link
    assert len(share_posts(share_suite)) == 2  # a 403 is not retried


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--cekura-share-links=0"], "--cekura-share-links='0' is invalid: give the days*"),
        # Without '=' the flag takes the next word: the message says where the path goes.
        (["--cekura-share-links", "tests"], "*put test paths before it"),
    ],
)
def test_bad_days_are_refused_before_anything_starts(
    share_suite: Suite, args: list[str], said: str
) -> None:
    result = share_suite.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{said}"])
    assert share_suite.emulator.requests == []


def test_under_xdist_the_controller_makes_each_link_once(
    share_suite: Suite, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    result = share_suite.run(
        "-n", "2", "--cekura-share-links", f"--cekura-summary-md={summary}", subprocess=True
    )
    result.assert_outcomes(passed=1, failed=1)
    assert len(share_posts(share_suite)) == 2
    assert summary.read_text().count("](https://dashboard.cekura.ai/share/results/") == 4


def test_links_stop_at_their_time_budget(emulator: Emulator) -> None:
    # Links are made before the session ends unfinished calls: a slow Cekura must not hold
    # that up, so past the budget the remaining results get no link (and one warning).
    with CekuraClient(emulator.url, SENTINEL_KEY) as client:
        body = {"scenarios": [{"scenario": 30}], "agent": 1}
        first, second = (client.start_runs("livekit", body).id for _ in range(2))
        emulator.inject("result", "slow", delay_s=0.6, times=1)
        expire_at = datetime.now(UTC) + timedelta(days=1)
        links, problems = create_links(lambda: client, [first, second], expire_at, budget=0.3)
    assert list(links) == [first]
    [problem] = problems
    assert f"no shareable link for result(s) {second}: the 0.3 s allowed" in problem
    assert len([r for r in emulator.requests if "shareable" in r.path]) == 1


def github_event(tmp_path: Path, **repository: object) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"repository": {"full_name": "acme/agent", **repository}}))
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": str(event)}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CI_PROJECT_VISIBILITY": "public", "CI_PROJECT_PATH": "acme/agent"}, "GitLab project"),
        ({}, "GitHub repository"),  # the event file below says public
    ],
    ids=["gitlab", "github"],
)
def test_on_a_public_repository_no_link_is_made(
    share_suite: Suite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    named: str,
) -> None:
    for name, value in (env or github_event(tmp_path, private=False)).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    result = share_suite.run("--cekura-share-links")
    result.assert_outcomes(passed=1, failed=1)
    refusal = f"*--cekura-share-links makes no links: the {named} acme/agent is public*"
    result.stdout.fnmatch_lines([f"cekura: {refusal}", f"pytest-cekura: {refusal}"])
    assert share_posts(share_suite) == []


def test_what_says_a_repository_is_public(tmp_path: Path) -> None:
    assert public_repository(github_event(tmp_path, visibility="public")) is not None
    assert public_repository(github_event(tmp_path, private=True, visibility="private")) is None
    assert public_repository({"CI_PROJECT_VISIBILITY": "internal"}) is None
    broken = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": str(tmp_path / "missing.json")}
    assert public_repository(broken) is None  # nothing says: the user's opt-in stands
    assert public_repository({}) is None
