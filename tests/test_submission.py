"""What gets submitted, and when: one POST per request shape, nothing for unselected tests."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from conftest import FAST, PLAYBOOK, Suite, wire
from pytest_cekura.emulator import Emulator


def runs_per_scenario(suite: Suite) -> Counter[int]:
    return Counter(run["scenario"] for run in suite.emulator.runs)


def test_marker_is_listed_by_pytest_markers(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.cekura_scenario(*scenario_ids, frequency=1, *"])


def test_twenty_scenarios_in_one_group_make_one_post(suite: Suite) -> None:
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(*range(200, 210))
        def test_ten_at_once():
            pass

        @pytest.mark.parametrize("sid", range(210, 220))
        def test_one_each(sid):
            pass
        """
    )
    suite.pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            # Markers added by other plugins during collection are honoured too.
            for item in items:
                callspec = getattr(item, "callspec", None)
                if callspec is not None:
                    item.add_marker(pytest.mark.cekura_scenario(callspec.params["sid"]))
        """
    )
    result = suite.run()
    result.assert_outcomes(passed=11)
    assert suite.posts() == 1
    assert runs_per_scenario(suite) == Counter({sid: 1 for sid in range(200, 220)})


def test_groups_split_only_on_request_shape(suite: Suite) -> None:
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, frequency=3)
        def test_a(): pass

        @pytest.mark.cekura_scenario(31, 32, frequency=2, min_success_rate=0.5)
        def test_b(): pass

        @pytest.mark.cekura_scenario(33, frequency=2)
        def test_c(): pass

        @pytest.mark.cekura_scenario(34, frequency=2, test_profile=7)
        def test_d(): pass
        """
    )
    suite.run().assert_outcomes(passed=4)
    assert suite.posts() == 3  # x3; x2; x2 with a test profile
    assert runs_per_scenario(suite) == Counter({30: 3, 31: 2, 32: 2, 33: 2, 34: 2})


def test_tests_sharing_a_scenario_share_its_runs(suite: Suite) -> None:
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("variant", ["a", "b"])
        @pytest.mark.cekura_scenario(30, frequency=2)
        def test_shared(variant, cekura_result):
            assert [r.scenario for r in cekura_result.runs] == [30, 30]

        @pytest.mark.cekura_scenario(30, 31, frequency=2)
        def test_overlapping(cekura_result):
            assert sorted(r.scenario for r in cekura_result.runs) == [30, 30, 31, 31]
        """
    )
    suite.run().assert_outcomes(passed=3)
    assert suite.posts() == 1
    assert runs_per_scenario(suite) == Counter({30: 2, 31: 2})


def test_collect_only_submits_nothing(suite: Suite) -> None:
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(): pass
        """
    )
    result = suite.run("--collect-only")
    assert result.ret == 0
    assert suite.emulator.requests == []


def test_only_selected_tests_are_submitted(suite: Suite) -> None:
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_kept(): pass

        @pytest.mark.cekura_scenario(31)
        def test_dropped(): pass

        @pytest.mark.skip(reason="not today")
        @pytest.mark.cekura_scenario(32)
        def test_skipped(): pass
        """
    )
    suite.run("-k", "kept or skipped").assert_outcomes(passed=1, skipped=1, deselected=1)
    assert runs_per_scenario(suite) == Counter({30: 1})


def test_no_marked_test_means_no_request_and_no_section(suite: Suite) -> None:
    suite.pytester.makepyfile("def test_plain(): pass")
    result = suite.run()
    result.assert_outcomes(passed=1)
    assert suite.emulator.requests == []
    result.stdout.no_fnmatch_line("*= cekura =*")


def test_missing_api_key_is_one_clear_error(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEKURA_API_KEY")
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(): pass

        @pytest.mark.cekura_scenario(31)
        def test_b(): pass
        """
    )
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.str().count("CEKURA_API_KEY environment variable is not set") == 1
    assert "--cekura-emulator" in result.stderr.str()
    assert suite.emulator.requests == []


@pytest.mark.parametrize(
    ("args", "posts"),
    [
        ((), 0),  # preflight's first GET meets the 401: nothing is started
        (("--cekura-no-preflight",), 1),  # the first POST's 401 stops the session
    ],
)
def test_rejected_api_key_stops_the_session_once(
    suite: Suite, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], posts: int
) -> None:
    monkeypatch.setenv("CEKURA_API_KEY", "wrong-key")
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(): pass

        @pytest.mark.cekura_scenario(31, frequency=2)
        def test_b(): pass
        """
    )
    result = suite.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert err.count("Cekura rejected the API key") == 1
    assert "CEKURA_API_KEY" in err
    assert "passed" not in result.stdout.str()
    assert suite.posts() == posts


def test_last_failed_resubmits_only_the_failed_tests(
    pytester: pytest.Pytester,
    make_emulator: Callable[[str], Emulator],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    suite = wire(pytester, make_emulator('[[scenario]]\nid = 31\noutcome = "fail"\n'), monkeypatch)
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_good(): pass

        @pytest.mark.cekura_scenario(31)
        def test_bad(): pass
        """
    )
    suite.pytester.runpytest(*FAST[:1]).assert_outcomes(passed=1, failed=1)  # cache on
    before = Counter(run["scenario"] for run in suite.emulator.runs)
    suite.pytester.runpytest(FAST[0], "--lf").assert_outcomes(failed=1)
    after = Counter(run["scenario"] for run in suite.emulator.runs)
    assert after - before == Counter({31: 1})


def test_plugin_can_be_disabled(suite: Suite) -> None:
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(): pass
        """
    )
    suite.pytester.runpytest("-p", "no:cekura").assert_outcomes(passed=1)
    assert suite.emulator.requests == []


def test_ambiguous_post_is_looked_up_under_the_scenarios_agent_without_preflight(
    suite: Suite,
) -> None:
    # The results list needs agent_id (cekura-api.md 6); without preflight and without an
    # agent on the marker, the agent comes from the first scenario.
    suite.emulator.inject("start", "error_after", status=500)
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_agent():
            pass
        """
    )
    suite.run("--cekura-no-preflight").assert_outcomes(passed=1)
    assert suite.posts() == 1
    agent = suite.emulator.catalogue.scenario(30).agent
    lookups = [r for r in suite.emulator.requests if r.path.endswith("/results/")]
    assert [r.query.get("agent_id") for r in lookups] == [str(agent)]


def start_bodies(suite: Suite) -> list[dict[str, Any]]:
    """The run-starting request bodies, as the emulator received them."""
    return [r.body for r in suite.emulator.requests if "run_scenarios" in r.path]


def test_livekit_v2_body_carries_every_option_of_the_marker(suite: Suite) -> None:
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(
            30, test_profile=7, personality=3, concurrency_limit=2,
            mock_tool_names=["check_inventory", "book_slot"],
            livekit_data={
                "agent_name": "pharmacy-pr-12",
                "url": "wss://preview.livekit.example",
                "config": {"locale": "de-DE", "store": 12},
            },
        )
        def test_preview(): pass
        """
    )
    suite.run().assert_outcomes(passed=1)
    (body,) = start_bodies(suite)
    assert {k: v for k, v in body.items() if k != "name"} == {
        "scenarios": [{"scenario": 30}],
        "frequency": 1,
        # One personality and one test profile: the single forms of the LiveKit v2 schema.
        "test_profile_id": 7,
        "personality_id": 3,
        "concurrency_limit": 2,
        "mock_tool_names": ["check_inventory", "book_slot"],
        "livekit_data": {
            "agent_name": "pharmacy-pr-12",
            "url": "wss://preview.livekit.example",
            "config": {"locale": "de-DE", "store": 12},
        },
    }


def test_livekit_data_shapes_the_groups(suite: Suite) -> None:
    suite.pytester.makepyfile(
        """
        import pytest

        PREVIEW = {"agent_name": "pharmacy-pr-12"}

        @pytest.mark.cekura_scenario(30, livekit_data=PREVIEW)
        def test_a(): pass

        @pytest.mark.cekura_scenario(31, livekit_data={"agent_name": "pharmacy-pr-12"})
        def test_b(): pass

        @pytest.mark.cekura_scenario(32, livekit_data={"agent_name": "pharmacy-pr-13"})
        def test_c(): pass

        @pytest.mark.cekura_scenario(33, livekit_data={"config": {"locale": "de-DE"}})
        def test_d(): pass
        """
    )
    suite.run().assert_outcomes(passed=4)
    by_data = {
        json.dumps(b["livekit_data"], sort_keys=True): [s["scenario"] for s in b["scenarios"]]
        for b in start_bodies(suite)
    }
    assert by_data == {
        '{"agent_name": "pharmacy-pr-12"}': [30, 31],  # same livekit_data: one POST
        '{"agent_name": "pharmacy-pr-13"}': [32],
        '{"config": {"locale": "de-DE"}}': [33],
    }


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("concurrency_limit", "2"),
        ("mock_tool_names", '["lookup"]'),
        ("mock_tool_names", '["other"]'),
    ],
)
def test_each_request_option_is_its_own_group(suite: Suite, option: str, value: str) -> None:
    suite.pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_plain(): pass

        @pytest.mark.cekura_scenario(31, {option}={value})
        def test_option(): pass
        """
    )
    suite.run().assert_outcomes(passed=1 + 1)
    bodies = start_bodies(suite)
    assert sorted(option in b for b in bodies) == [False, True]


def test_session_defaults_from_flags_ini_and_environment(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite.pytester.makeini(
        """
        [pytest]
        cekura_mock_tool_names = check_inventory, book_slot
        cekura_livekit_config = room.json
        """
    )
    suite.pytester.path.joinpath("room.json").write_text('{"locale": "en-GB"}')
    monkeypatch.setenv("CEKURA_LIVEKIT_AGENT_NAME", "pharmacy-pr-12")
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_defaults(): pass

        # The marker's own keys win, one by one; None drops the session's value.
        @pytest.mark.cekura_scenario(
            31, concurrency_limit=1, mock_tool_names=[],
            livekit_data={"config": {"locale": "de-DE"}, "agent_name": None},
        )
        def test_overrides(): pass

        # A provider that takes no livekit_data gets none, and the session stays valid.
        @pytest.mark.cekura_scenario(32, provider="voice", agent=1)
        def test_voice(): pass
        """
    )
    suite.run("--cekura-concurrency-limit=4").assert_outcomes(passed=3)
    bodies = {
        b["scenarios"][0]
        if isinstance(b["scenarios"][0], int)
        else b["scenarios"][0]["scenario"]: b
        for b in start_bodies(suite)
    }
    assert bodies[30]["concurrency_limit"] == 4
    assert bodies[30]["mock_tool_names"] == ["check_inventory", "book_slot"]
    assert bodies[30]["livekit_data"] == {
        "agent_name": "pharmacy-pr-12",
        "config": {"locale": "en-GB"},
    }
    assert bodies[31]["concurrency_limit"] == 1
    assert "mock_tool_names" not in bodies[31]
    assert bodies[31]["livekit_data"] == {"config": {"locale": "de-DE"}}
    assert "livekit_data" not in bodies[32]
    assert bodies[32]["concurrency_limit"] == 4  # the voice runner takes it too


def test_failure_report_shows_the_room_metadata_sent(
    make_suite: Callable[[str], Suite],
) -> None:
    # livekit_data.config replaces the agent's saved LiveKit Config: what the agent received
    # is in the report, not only in the dashboard.
    suite = make_suite(PLAYBOOK)  # scenario 31 fails
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(
            31, livekit_data={"agent_name": "pharmacy-pr-12", "config": {"locale": "de-DE"}}
        )
        def test_billing(): pass
        """
    )
    result = suite.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*LiveKit agent name (livekit_data.agent_name): pharmacy-pr-12",
            "*room metadata sent (livekit_data.config, replacing the agent's saved LiveKit "
            'Config): {"locale": "de-DE"}',
        ]
    )
    # What the report says is what the agent got: the config, not merged with the saved one.
    (run,) = suite.emulator.runs
    assert json.loads(run["room_metadata"]) == {"locale": "de-DE"}
    assert run["livekit_agent_name"] == "pharmacy-pr-12"


def test_dry_run_lists_the_request_options(suite: Suite) -> None:
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, concurrency_limit=3, livekit_data={"agent_name": "pr"})
        def test_a(): pass
        """
    )
    result = suite.run("--cekura-dry-run")
    result.stdout.fnmatch_lines(
        ['*request 1: livekit, *concurrency limit 3, livekit_data {"agent_name": "pr"}: *']
    )
    assert start_bodies(suite) == []
