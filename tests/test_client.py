"""The transport layer's retry and error rules, at the httpx transport seam.

These faults (dropped connections, 5xx after the fact) are produced here with
``httpx.MockTransport`` because they concern one request at a time; the plugin-level tests run
the same client against the emulator over loopback HTTP.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from conftest import Suite
from pytest_cekura.client import (
    API_KEY_HEADER,
    CekuraClient,
    RetryPolicy,
    backoff_delay,
    parse_retry_after,
)
from pytest_cekura.errors import (
    ApiError,
    AuthError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from pytest_cekura.models import Run
from pytest_cekura.options import DEFAULT_DASHBOARD_URL
from pytest_cekura.report import Links, run_url
from pytest_cekura.secret import Secret

KEY = "sk-client-sentinel-7f3a9c"
RESULT = {"id": 5000, "status": "pending", "runs": [{"id": 1, "scenario": 30}]}


def make_client(
    handler: Callable[[httpx.Request], httpx.Response],
) -> tuple[CekuraClient, list[httpx.Request], list[float]]:
    seen: list[httpx.Request] = []
    sleeps: list[float] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = CekuraClient(
        "https://cekura.test",
        Secret(KEY),
        transport=httpx.MockTransport(record),
        sleep=sleeps.append,
        rng=lambda: 1.0,
        retry=RetryPolicy(max_attempts=4),
    )
    return client, seen, sleeps


def responses(*items: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    queue = list(items)

    def handler(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler


def test_key_is_sent_in_header_and_absent_from_reprs() -> None:
    client, seen, _ = make_client(responses(httpx.Response(200, json=[])))
    client.get_runs([1])
    assert seen[0].headers[API_KEY_HEADER] == KEY
    assert KEY not in repr(client)
    assert KEY not in repr(seen[0])
    assert KEY not in repr(Secret(KEY))
    assert KEY not in str(Secret(KEY))


def test_bulk_get_uses_v2_with_run_ids_and_the_result_scope() -> None:
    client, seen, _ = make_client(responses(httpx.Response(200, json=[])))
    client.get_runs([1, 2, 3], result_id=5000)
    client.get_runs([4])
    assert seen[0].url.path == "/test_framework/v2/runs/bulk/"
    assert dict(seen[0].url.params) == {"run_ids": "1,2,3", "result_id": "5000"}
    assert dict(seen[1].url.params) == {"run_ids": "4"}  # the spec has no ids parameter
    assert client.notices == []


def v2_missing(request: httpx.Request) -> httpx.Response:
    """A deployment without the v2 paths: they 404, v1 answers."""
    if request.url.path.startswith("/test_framework/v2/"):
        return httpx.Response(404, json={"detail": "Not found."})
    if "/runs/bulk/" in request.url.path:
        return httpx.Response(200, json=[{"id": 1, "status": "running"}])
    return httpx.Response(200, json={"id": 5000, "status": "running", "runs": {}})


def test_a_404_on_v2_falls_back_to_v1_once_per_session_and_says_so() -> None:
    client, seen, _ = make_client(v2_missing)
    for _ in range(3):
        assert [r.id for r in client.get_runs([1], result_id=5000).runs] == [1]
    paths = [request.url.path for request in seen]
    assert paths == [
        "/test_framework/v2/runs/bulk/",
        "/test_framework/v1/runs/bulk/",
        "/test_framework/v1/runs/bulk/",
        "/test_framework/v1/runs/bulk/",
    ]
    # The deprecated path gets both query names (docs: run_ids, SDK: ids), and no scope.
    assert dict(seen[1].url.params) == {"run_ids": "1", "ids": "1"}
    assert client.get_result(5000).id == 5000
    assert client.get_result(5000).id == 5000
    assert [r.url.path for r in seen[4:]] == [
        "/test_framework/v2/results/5000/",
        "/test_framework/v1/results/5000/",
        "/test_framework/v1/results/5000/",
    ]
    assert client.notices == [
        "GET /test_framework/v2/runs/bulk/ answered 404: using the deprecated "
        "/test_framework/v1/runs/bulk/ for the rest of the session",
        "GET /test_framework/v2/results/{id}/ answered 404: using the deprecated "
        "/test_framework/v1/results/{id}/ for the rest of the session",
    ]


def test_a_result_missing_on_v2_and_v1_is_not_found_and_keeps_v2() -> None:
    client, seen, _ = make_client(responses(httpx.Response(404, json={"detail": "Not found."})))
    with pytest.raises(NotFoundError):
        client.get_result(5)
    with pytest.raises(NotFoundError):
        client.get_result(6)
    assert [r.url.path.split("/")[2] for r in seen] == ["v2", "v1", "v2", "v1"]
    assert client.notices == []


def test_result_detail_is_read_from_v2() -> None:
    detail = {"id": 5000, "agent": 42, "status": "completed", "runs": {"1": {"id": 1}}}
    client, seen, _ = make_client(responses(httpx.Response(200, json=detail)))
    result = client.get_result(5000)
    assert seen[0].url.path == "/test_framework/v2/results/5000/"
    assert result.runs[0].result_id == 5000


def test_results_are_looked_up_with_the_specs_filters() -> None:
    agent = {"id": 42, "project": 1376, "agent_name": "A", "assistant_provider": "livekit"}
    page = {"count": 1, "next": None, "previous": None, "results": [{"id": 7, "name": "n"}]}

    def handler(request: httpx.Request) -> httpx.Response:
        if "aiagents" in request.url.path:
            return httpx.Response(200, json=agent)
        return httpx.Response(200, json=page)

    client, seen, _ = make_client(handler)
    assert [r.id for r in client.find_results(name="n", agent_id=42)] == [7]
    assert dict(seen[0].url.params) == {"search": "n", "page_size": "100", "agent_id": "42"}
    client.get_agent(42)
    client.find_results(name="n", agent_id=42)
    assert seen[-1].url.path == "/test_framework/v1/results/"
    assert dict(seen[-1].url.params) == {
        "search": "n",
        "page_size": "100",
        "agent_id": "42",
        "project_id": "1376",
    }


def test_the_project_of_an_agent_is_looked_up_once() -> None:
    agent = {"id": 42, "project": 1376, "livekit_data": {"api_secret_configured": True}}
    client, seen, _ = make_client(responses(httpx.Response(200, json=agent)))
    assert client.project_of(42) == 1376
    assert client.project_of(42) == 1376
    assert len(seen) == 1
    gone, seen_gone, _ = make_client(responses(httpx.Response(404, json={"detail": "x"})))
    assert gone.project_of(9) is None
    assert gone.project_of(9) is None
    assert len(seen_gone) == 2  # v1 then v2, once: a missing project is not asked for again


def test_end_call_and_rerun_take_the_specs_empty_bodies() -> None:
    client, seen, _ = make_client(
        responses(httpx.Response(200), httpx.Response(200, json={"id": 6000, "runs": []}))
    )
    client.end_call(1)  # 200 with no body at all
    assert seen[0].content == b""
    assert client.rerun(5000).id == 6000
    assert seen[1].url.path == "/test_framework/v1/results/5000/rerun/"
    assert seen[1].content == b""  # rerun takes no body


def test_bulk_get_accepts_paginated_shape_and_skips_bad_entries() -> None:
    body = {"results": [{"id": 1, "status": "running"}, {"id": "x"}, {"id": 2, "status": 5}]}
    client, _, _ = make_client(responses(httpx.Response(200, json=body)))
    batch = client.get_runs([1, 2])
    assert [r.id for r in batch.runs] == [1, 2]
    assert batch.runs[1].status == "5"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_get_is_retried_on_server_errors(status: int) -> None:
    client, seen, sleeps = make_client(
        responses(httpx.Response(status), httpx.Response(200, json=[]))
    )
    client.get_runs([1])
    assert len(seen) == 2
    assert sleeps == [0.5]


def test_get_honours_retry_after_seconds_and_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    client, seen, sleeps = make_client(
        responses(
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(429, headers={"Retry-After": later}),
            httpx.Response(200, json=[]),
        )
    )
    client.get_runs([1])
    assert len(seen) == 3
    assert sleeps[0] == 2.0
    assert 25 < sleeps[1] <= 30


def test_get_honours_retry_after_on_503_but_a_post_is_not_resent() -> None:
    # cekura-api.md 9.3: Retry-After on 429 *and* 503; a 503 on a POST stays ambiguous.
    busy = httpx.Response(503, headers={"Retry-After": "3"})
    client, seen, sleeps = make_client(responses(busy, httpx.Response(200, json=[])))
    client.get_runs([1])
    assert (len(seen), sleeps) == (2, [3.0])
    client, seen, sleeps = make_client(responses(busy))
    with pytest.raises(ServerError):
        client.start_runs("livekit", {"scenarios": [{"scenario": 30}]})
    assert (len(seen), sleeps) == (1, [])


def test_every_request_says_json_as_the_reference_asks() -> None:
    client, seen, _ = make_client(responses(httpx.Response(200, json=[])))
    client.get_runs([1])
    assert seen[0].headers["Content-Type"] == "application/json"


def test_get_gives_up_after_max_attempts() -> None:
    client, seen, sleeps = make_client(responses(httpx.Response(503, text="busy")))
    with pytest.raises(ServerError, match="HTTP 503: busy"):
        client.get_runs([1])
    assert len(seen) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_retry_after_beyond_the_cap_fails_at_once() -> None:
    client, seen, _ = make_client(responses(httpx.Response(429, headers={"Retry-After": "3600"})))
    with pytest.raises(RateLimitedError) as info:
        client.get_runs([1])
    assert info.value.retry_after == 3600
    assert len(seen) == 1


def test_get_never_sleeps_past_the_callers_deadline() -> None:
    client, seen, _ = make_client(responses(httpx.Response(503)))
    with pytest.raises(ServerError):
        client.get_runs([1], deadline=0.0)  # already past
    assert len(seen) == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, text="boom"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.WriteError("broken pipe"),
    ],
    ids=["500", "read-timeout", "dropped", "write-error"],
)
def test_start_runs_is_never_resent_once_it_may_have_arrived(
    failure: httpx.Response | Exception,
) -> None:
    client, seen, _ = make_client(responses(failure, httpx.Response(201, json=RESULT)))
    with pytest.raises((ServerError, TransportError)) as info:
        client.start_runs("livekit", {"scenarios": [{"scenario": 30}]})
    assert len(seen) == 1
    if isinstance(info.value, TransportError):
        assert info.value.may_have_reached_server


def test_start_runs_is_resent_when_the_connection_was_never_made() -> None:
    client, seen, _ = make_client(
        responses(httpx.ConnectError("refused"), httpx.Response(201, json=RESULT))
    )
    result = client.start_runs("livekit", {"scenarios": [{"scenario": 30}]})
    assert result.id == 5000
    assert len(seen) == 2


def test_start_runs_is_resent_after_429_because_the_server_did_nothing() -> None:
    client, seen, sleeps = make_client(
        responses(
            httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(201, json=RESULT)
        )
    )
    client.start_runs("livekit", {"scenarios": [{"scenario": 30}]})
    assert len(seen) == 2
    assert sleeps == [1.0]


def test_start_runs_posts_to_documented_livekit_path_with_slash() -> None:
    client, seen, _ = make_client(responses(httpx.Response(201, json=RESULT)))
    client.start_runs("livekit", {"scenarios": [{"scenario": 30}], "frequency": 2})
    assert seen[0].method == "POST"
    assert seen[0].url.path == ("/test_framework/v1/scenarios-external/run_scenarios_livekit_v2/")


@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthError), (403, AuthError), (404, NotFoundError)]
)
def test_status_errors_are_typed_and_not_retried(status: int, error: type[Exception]) -> None:
    client, seen, _ = make_client(responses(httpx.Response(status, json={"detail": "nope"})))
    with pytest.raises(error, match=f"HTTP {status}"):
        client.get_runs([1])
    # Not retried; a 404 on v2 is asked once more on the deprecated v1 path.
    assert [r.url.path.split("/")[2] for r in seen] == ["v2", "v1"] if status == 404 else ["v2"]


def test_error_bodies_are_redacted() -> None:
    client, _, _ = make_client(responses(httpx.Response(400, text=f"bad key {KEY}")))
    with pytest.raises(ApiError, match="HTTP 400: bad key") as info:
        client.get_result(1)
    assert KEY not in str(info.value)
    assert KEY not in info.value.body


def test_malformed_json_is_a_protocol_error() -> None:
    client, _, _ = make_client(responses(httpx.Response(200, text="<html>oops")))
    with pytest.raises(ProtocolError, match="not JSON"):
        client.get_result(1)


def test_json_that_msgspec_refuses_is_still_read_as_json_reads_it() -> None:
    # Answers are decoded with msgspec (faster); NaN is JSON that Python's json reads and
    # msgspec refuses: it must still be read, not be "not JSON".
    body = '[{"id": 1, "status": "running", "duration": NaN, "trace_id": 123456789012345678901}]'
    client, _, _ = make_client(responses(httpx.Response(200, text=body)))
    batch = client.get_runs([1])
    assert [(run.id, run.status) for run in batch.runs] == [(1, "running")]
    assert batch.invalid == {}


def test_an_answer_is_freed_once_read_not_left_to_the_cyclic_collector() -> None:
    # httpx's response and its stream refer to each other; the bulk answers those cycles
    # kept (0.5 MB each) raised peak RSS 40 MB at 10,000 runs until a full collection.
    body = [{"id": i, "status": "running"} for i in range(1, 401)]
    client, _, _ = make_client(lambda request: httpx.Response(200, json=body))
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            assert len(client.get_runs(list(range(1, 401))).runs) == 400
        gc.collect()
        kept = [obj for obj in gc.garbage if isinstance(obj, httpx.Response)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert kept == []


def test_json_nested_too_deeply_is_one_protocol_error_not_a_crash() -> None:
    # A hostile or broken server: msgspec and json both give up with a RecursionError.
    body = '[{"id": 1, "status": "running", "x": ' + "[" * 100_000 + "]" * 100_000 + "}]"
    client, _, _ = make_client(responses(httpx.Response(200, text=body)))
    with pytest.raises(ProtocolError, match="nested too deeply"):
        client.get_runs([1])


def test_request_counts_include_retries() -> None:
    client, _, _ = make_client(
        responses(
            httpx.Response(503), httpx.Response(200, json=[]), httpx.Response(201, json=RESULT)
        )
    )
    client.get_runs([1])
    assert client.request_counts == {"GET": 2}
    client.start_runs("livekit", {"scenarios": [{"scenario": 30}]})
    assert client.request_counts == {"GET": 2, "POST start runs": 1}


def test_backoff_is_full_jitter_and_capped() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0)
    assert backoff_delay(0, policy, lambda: 1.0) == 0.5
    assert backoff_delay(10, policy, lambda: 1.0) == 8.0
    assert backoff_delay(3, policy, lambda: 0.0) == 0.0


@pytest.mark.parametrize(
    ("header", "expected"), [("3", 3.0), ("0.5", 0.5), ("-1", 0.0), ("soon", None), (None, None)]
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_a_plain_string_key_is_wrapped_at_once() -> None:
    client = CekuraClient(
        "https://cekura.test",
        KEY,
        transport=httpx.MockTransport(
            lambda request: (
                httpx.Response(200, json=[])
                if request.headers[API_KEY_HEADER] == KEY
                else httpx.Response(401)
            )
        ),
    )
    client.get_runs([1])
    assert KEY not in repr(vars(client))


# -- against the emulator, as a user runs it ------------------------------------------------

SCORED_LATE = """
[[scenario]]
id = 40
name = "Scored after the call"
evaluation_delay_s = {delay}
"""


def test_the_session_polls_v2_bulk_scoped_to_the_result(
    make_suite: Callable[[str], Suite],
) -> None:
    suite = make_suite("")
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, frequency=2)
        def test_a(): pass
        """
    )
    result = suite.run("-v")
    result.assert_outcomes(passed=1)
    polls = [r for r in suite.emulator.requests if "/runs/bulk" in r.path]
    assert polls
    assert {r.path for r in polls} == {"/test_framework/v2/runs/bulk/"}
    assert all(set(r.query) == {"run_ids", "result_id"} for r in polls)
    assert {r.query["result_id"] for r in polls} == {"5000"}
    assert "deprecated" not in result.stdout.str()


def test_a_deployment_without_v2_bulk_is_polled_on_v1_after_one_404(
    make_suite: Callable[[str], Suite],
) -> None:
    fault = '[[fault]]\nmatch = "bulk"\naction = "error_before"\nstatus = 404\ntimes = 1\n'
    suite = make_suite(fault)
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(): pass
        """
    )
    result = suite.run("-v")
    result.assert_outcomes(passed=1)
    polls = [r.path for r in suite.emulator.requests if "/runs/bulk" in r.path]
    assert polls[0] == "/test_framework/v2/runs/bulk/"
    assert set(polls[1:]) == {"/test_framework/v1/runs/bulk/"}  # v2 is not asked again
    result.stdout.fnmatch_lines(
        [
            "*cekura notices*",
            "cekura: GET /test_framework/v2/runs/bulk/ answered 404: using the deprecated "
            "/test_framework/v1/runs/bulk/ for the rest of the session",
        ]
    )
    # Without -v the switch is not worth a line.
    quiet = suite.run()
    assert "deprecated" not in quiet.stdout.str()


def test_a_completed_run_is_waited_for_until_cekura_has_scored_it(
    make_suite: Callable[[str], Suite],
) -> None:
    suite = make_suite(SCORED_LATE.format(delay=300))  # 0.3 s at the tests' time scale
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(40)
        def test_a(cekura_result):
            assert cekura_result.runs[0].success is True
        """
    )
    suite.run().assert_outcomes(passed=1)
    # The poller saw the run completed without a score, and went on polling.
    assert suite.emulator.count("GET", "bulk") >= 2


def test_a_run_still_unscored_at_the_deadline_errors_saying_so(
    make_suite: Callable[[str], Suite],
) -> None:
    suite = make_suite(SCORED_LATE.format(delay=100_000))  # 100 s: beyond the deadline
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(40)
        def test_a(): pass
        """
    )
    result = suite.run("--cekura-timeout=1.5")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*why: the call completed, but Cekura's evaluation was still pending at the deadline*"]
    )
    # The call is over: nothing is ended (ending could only disturb the scoring).
    assert suite.emulator.count("POST", "end_call") == 0


def test_links_carry_the_project_and_fall_back_to_the_dashboard_without_it() -> None:
    template = DEFAULT_DASHBOARD_URL
    assert run_url(template, 5012, 90001, 1376) == (
        "https://dashboard.cekura.ai/1376/results/5012?call_id=90001"
    )
    # Unknown project: the dashboard's start page, which opens the user's own project.
    assert run_url(template, 5012, 90001, None) == "https://dashboard.cekura.ai/"
    # A template without the project (the emulator's page) never needs a look-up.
    asked: list[int] = []

    def project_of(agent: int) -> int | None:
        asked.append(agent)
        return 9

    emulator = Links("http://127.0.0.1:1/r/{result_id}?run={run_id}", project_of)
    assert emulator.run(Run(id=2, agent=42), 5000) == "http://127.0.0.1:1/r/5000?run=2"
    assert asked == []
    links = Links(template, project_of, {30: 43})
    assert links.run(Run(id=2, agent=42), 5000).startswith("https://dashboard.cekura.ai/9/")
    assert links.run(Run(id=3, scenario=30), 5000, None).endswith("/9/results/5000?call_id=3")
    assert asked == [42, 43]  # the run's own agent, else its scenario's
    assert Links(template).run(Run(id=4), 5000) == "https://dashboard.cekura.ai/"


def test_an_empty_200_where_a_result_was_expected_is_an_unreadable_answer() -> None:
    # Not a crash, and (for a start) not re-sent: the caller looks the result up by name.
    client, seen, _ = make_client(responses(httpx.Response(200)))
    with pytest.raises(ProtocolError, match="unexpected response shape"):
        client.start_runs("livekit", {"name": "n", "scenarios": [{"scenario": 30}]})
    with pytest.raises(ProtocolError, match="expected a JSON array"):
        client.get_runs([1])
    assert len(seen) == 2
    assert client.end_calls(5000) is True  # the spec's answer: 200, no body
