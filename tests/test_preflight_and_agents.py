"""Checks before spending (preflight), agent selection and the providers' request bodies."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import pytest

from conftest import Suite

CATALOGUE = """
[[scenario]]
id = 999
exists = false

[[scenario]]
id = 36
name = "Wrong pharmacy"
outcome = "fail"

[[agent]]
id = 42
name = "Pharmacy agent"
livekit_url = "wss://pharmacy.livekit.cloud"
livekit_api_key = "APIpharmacy"
livekit_api_secret = "very-secret-livekit-value"
livekit_agent_name = "pharmacy-agent"
livekit_config = { empty_timeout = 300 }

[[agent]]
id = 43
name = "Half set up"
livekit_api_key = "APIhalf"
livekit_api_secret = "another-secret-value"

[[agent]]
id = 44
name = "Phone agent"
provider = "vapi"

[[agent]]
id = 45
name = "Clinic agent"
project = 1376
livekit_url = "wss://clinic.livekit.cloud"
livekit_agent_name = "clinic-agent"
livekit_credentials = "project"

[[agent]]
id = 77
exists = false

[[test_profile]]
id = 7
name = "Jane"
information = { customer_name = "Jane Doe" }
"""


@pytest.fixture
def agents(make_suite: Callable[[str], Suite]) -> Suite:
    return make_suite(CATALOGUE)


def calls_by_scenario(suite: Suite) -> Counter[int]:
    return Counter(run["scenario"] for run in suite.emulator.runs)


def test_missing_scenario_errors_its_test_alone_and_is_not_paid_for(agents: Suite) -> None:
    agents.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, 31, 32)
        def test_good(): pass

        @pytest.mark.cekura_scenario(999)
        def test_missing(): pass
        """
    )
    result = agents.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*scenario 999 does not exist in your Cekura project*"])
    assert calls_by_scenario(agents) == Counter({30: 1, 31: 1, 32: 1})
    preflight = [
        r for r in agents.emulator.requests if "/scenarios/" in r.path and r.method == "GET"
    ]
    # One page of the scenario list (30-32 are not in this catalogue's list), then each id
    # the page did not show on its own.
    assert sorted(r.path.rstrip("/").rsplit("/", 1)[1] for r in preflight) == [
        "30",
        "31",
        "32",
        "999",
        "scenarios",
    ]
    result.stdout.fnmatch_lines(["cekura: *API requests: 1 POST start runs, *GET preflight*"])


def test_livekit_settings_missing_on_the_agent_are_a_warning_not_a_block(agents: Suite) -> None:
    # Cekura may take the LiveKit settings from the project, which no endpoint shows: only
    # certain evidence stops a session, so these runs start and the terminal says what to check.
    agents.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, agent=43)
        def test_a(): pass

        @pytest.mark.cekura_scenario(31)
        def test_b(): pass
        """
    )
    result = agents.run()
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    url = "cekura warning: agent 43 ('Half set up') shows no LiveKit URL (livekit_data.url)"
    name = "cekura warning: agent 43 ('Half set up') shows no LiveKit agent name"
    assert out.count(url) == 1  # once, in the terminal summary
    assert out.count(name) == 1
    assert "API key" not in out  # the key and secret are configured (their flags say so)
    assert "another-secret-value" not in out + result.stderr.str()
    assert agents.posts() == 2


def test_under_xdist_the_warnings_reach_the_terminal_once(agents: Suite) -> None:
    agents.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        @pytest.mark.cekura_scenario(30, agent=43)
        def test_a(n): pass
        """
    )
    result = agents.run("-n", "2", subprocess=True)
    result.assert_outcomes(passed=4)
    out = result.stdout.str()
    assert out.count("cekura warning: agent 43 ('Half set up') shows no LiveKit URL") == 1
    assert agents.posts() == 1


def test_a_livekit_agent_as_the_live_service_shows_it_runs_with_preflight(agents: Suite) -> None:
    # Masked secrets, key and secret on the project: the service accepts these runs, so
    # preflight must not stop them (no --cekura-no-preflight needed). The report links to the
    # run in the agent's project, looked up once.
    agents.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, 36, agent=45)
        def test_clinic(): pass
        """
    )
    result = agents.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*link: https://dashboard.cekura.ai/1376/results/*?call_id=*"])
    out = result.stdout.str()
    assert "cekura warning: agent 45 ('Clinic agent') shows no LiveKit API key" in out
    assert "cekura warning: agent 45 ('Clinic agent') shows no LiveKit URL" not in out
    assert agents.posts() == 1
    lookups = [r for r in agents.emulator.requests if "/aiagents/45" in r.path]
    assert len(lookups) == 1  # preflight's look-up also gives the links their project


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("agent=77", "agent 77 does not exist in your Cekura project"),
        ("agent=44", "agent 44 ('Phone agent') is set up for provider 'vapi', not LiveKit"),
    ],
)
def test_wrong_agent_fails_the_session_before_any_post(
    agents: Suite, marker: str, message: str
) -> None:
    agents.pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.cekura_scenario(30, {marker})
        def test_a(): pass
        """
    )
    result = agents.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
    assert agents.posts() == 0


def test_no_preflight_skips_the_checks(agents: Suite) -> None:
    agents.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, agent=77)
        def test_a(): pass
        """
    )
    # Agent 77 does not exist: preflight would stop the session; without it the POST goes out.
    agents.run("--cekura-no-preflight")
    assert agents.posts() == 1
    looked_up = [r.path for r in agents.emulator.requests if r.method == "GET"]
    assert not [path for path in looked_up if "/scenarios/" in path]
    # Only the report's links look the agent up (for its project), once.
    assert len([path for path in looked_up if "/aiagents/" in path]) <= 2


def test_agent_from_marker_option_environment_and_ini(
    agents: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_default(): pass

        @pytest.mark.cekura_scenario(31, agent=42)
        def test_explicit(): pass
        """
    )
    agents.pytester.makeini("[pytest]\ncekura_agent = 1\n")
    monkeypatch.setenv("CEKURA_AGENT_ID", "42")
    agents.run().assert_outcomes(passed=2)
    # The environment (42) beats the ini (1); both tests end up in one request.
    assert agents.posts() == 1
    assert {run["agent"] for run in agents.emulator.runs} == {42}
    meta = agents.emulator.runs[0]
    assert meta["livekit_agent_name"] == "pharmacy-agent"
    assert json.loads(meta["room_metadata"]) == {"empty_timeout": 300}


def test_different_agents_are_different_requests(agents: Suite) -> None:
    agents.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, agent=42)
        def test_a(): pass

        @pytest.mark.cekura_scenario(31)
        def test_b(): pass
        """
    )
    agents.run().assert_outcomes(passed=2)
    assert agents.posts() == 2
    assert {run["scenario"]: run["agent"] for run in agents.emulator.runs} == {30: 42, 31: 1}


def test_per_run_options_reach_the_agent(agents: Suite) -> None:
    agents.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(
            30, agent=42, test_profile=7, personality=3, publish_data_message={"lang": "de"}
        )
        def test_options(cekura_result):
            assert cekura_result.runs[0].test_profile_data["name"] == "Jane"
        """
    )
    agents.run().assert_outcomes(passed=1)
    (run,) = agents.emulator.runs
    assert run["publish_data_message"] == {"lang": "de"}
    assert json.loads(run["job_metadata"]) == {
        "scenario_id": 30,
        "run_id": run["id"],
        "test_profile_data": {
            "id": 7,
            "name": "Jane",
            "information": {"customer_name": "Jane Doe"},
        },
    }


@pytest.mark.parametrize(
    ("provider", "extra", "path"),
    [
        ("pipecat", "", "run_scenarios_pipecat_v2"),
        ("voice", ", agent=42", "run_scenarios"),
        ("text", ", agent=42", "run_scenarios_text"),
        ("vapi", ", agent=42, request_fields={'vapi_assistant_id': 'asst_1'}", "vapi_webrtc"),
        ("websocket", ", scenario_fields={'websocket_url': 'wss://a.example/ws'}", "websockets"),
        (
            "livekit_v1",
            ", scenario_fields={'livekit_room_url': 'wss://x', 'access_token': 't'}",
            "run_scenarios_livekit",
        ),
    ],
)
def test_every_provider_gets_its_documented_body(
    agents: Suite, provider: str, extra: str, path: str
) -> None:
    agents.pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.cekura_scenario(30, 31, frequency=2, provider={provider!r}{extra})
        def test_provider(cekura_result):
            assert len(cekura_result.runs) == 4
        """
    )
    agents.run().assert_outcomes(passed=1)
    (post,) = [r for r in agents.emulator.requests if r.method == "POST"]
    assert post.path.rstrip("/").endswith(path)
    assert calls_by_scenario(agents) == Counter({30: 2, 31: 2})


def test_default_provider_from_ini(agents: Suite) -> None:
    agents.pytester.makeini("[pytest]\ncekura_provider = pipecat\n")
    agents.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(): pass
        """
    )
    agents.run().assert_outcomes(passed=1)
    (post,) = [r for r in agents.emulator.requests if r.method == "POST"]
    assert "run_scenarios_pipecat_v2" in post.path


def test_unreachable_cekura_is_given_up_on_after_the_first_lookups(suite: Suite) -> None:
    # 30 scenarios against a closed port: once a look-up finds nobody listening, the others
    # are not tried (each would wait out its retries), and the session stops: nothing started.
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("sid", range(100, 130))
        def test_scenario(sid):
            pass
        """
    )
    suite.pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                item.add_marker(pytest.mark.cekura_scenario(item.callspec.params["sid"]))
        """
    )
    result = suite.run("--cekura-url=http://127.0.0.1:9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*cannot reach Cekura at http://127.0.0.1:9 *nothing was started*"]
    )
    assert "no tests ran" in result.stdout.str()
