"""Issue #13: the plugin sends only fields the chosen endpoint declares. A marker option the
provider's endpoint does not take is refused at collection (the live service would drop it
silently); ``name`` is sent only where the schema has it, and a POST without one that may have
reached Cekura cannot be looked up, so it errors without a second POST."""

from __future__ import annotations

import pytest

from conftest import Suite

REFUSED = """
import pytest

WS = {"websocket_url": "wss://agent.example/ws"}

@pytest.mark.cekura_scenario(30, provider="pipecat", agent=42)
def test_pipecat_agent(): pass

@pytest.mark.cekura_scenario(30, provider="retell", agent=42, test_profile=7)
def test_retell_profile(): pass

@pytest.mark.cekura_scenario(30, provider="vapi", agent=42, personality=3,
                             request_fields={"vapi_assistant_id": "a"})
def test_vapi_personality(): pass

@pytest.mark.cekura_scenario(30, provider="websocket", test_profile=7, scenario_fields=WS)
def test_websocket_profile(): pass
"""


def test_an_option_the_endpoint_does_not_take_is_refused_at_collection(suite: Suite) -> None:
    suite.pytester.makepyfile(REFUSED)
    result = suite.run()
    result.assert_outcomes(errors=4)
    fix = (
        " (its endpoint has no such field and Cekura would drop it without a word: remove it, "
        "or choose one of those providers)"
    )
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.cekura_scenario: agent= is not accepted by provider='pipecat'; "
            "providers that take it: livekit, livekit_v1, pipecat_v1, websocket, voice, text, "
            f"vapi, retell, elevenlabs, sip, email, chirp, agora{fix}",
        ]
    )
    profiles = "livekit, livekit_v1, pipecat, voice, text, elevenlabs, sip, chirp, agora"
    out = result.stdout.str()
    for option, provider in (
        ("test_profile", "retell"),
        ("personality", "vapi"),
        ("test_profile", "websocket"),
    ):
        refused = f"{option}= is not accepted by provider='{provider}'; providers that take it: "
        assert f"{refused}{profiles}{fix}" in out
    assert suite.posts() == 0


def test_the_session_agent_is_not_sent_where_the_endpoint_has_no_agent(suite: Suite) -> None:
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, provider="pipecat")
        def test_pipecat(): pass

        @pytest.mark.cekura_scenario(30)
        def test_livekit(): pass
        """
    )
    suite.run("--cekura-agent=1").assert_outcomes(passed=2)
    bodies = {
        r.path.rsplit("/", 2)[-2]: r.body for r in suite.emulator.requests if r.method == "POST"
    }
    assert "agent" not in bodies["run_scenarios_pipecat_v2"]
    assert bodies["run_scenarios_livekit_v2"]["agent"] == 1


def test_a_nameless_endpoints_ambiguous_post_errors_without_a_look_up(suite: Suite) -> None:
    suite.emulator.inject("start", "error_after", status=500)
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(
            30, provider="websocket", agent=1,
            scenario_fields={"websocket_url": "wss://agent.example/ws"},
        )
        def test_websocket(): pass
        """
    )
    result = suite.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*the request to start runs failed after it may have reached Cekura (*). It was not "
            "re-sent, so you are not charged twice, and it cannot be looked up: provider "
            "'websocket''s endpoint takes no result name. Check agent 1's newest results in "
            "Cekura's dashboard for runs of scenarios 30 started now*"
        ]
    )
    (post,) = [r for r in suite.emulator.requests if r.method == "POST"]
    assert "name" not in post.body
    assert not [r for r in suite.emulator.requests if r.path.endswith("/results/")]


@pytest.mark.parametrize("provider", ["websocket", "pipecat_v1", "email"])
def test_no_name_is_sent_where_the_schema_has_none(suite: Suite, provider: str) -> None:
    fields = {
        "websocket": 'scenario_fields={"websocket_url": "wss://a.example/ws"}',
        "pipecat_v1": 'scenario_fields={"pipecat_room_url": "https://a.daily.co/r"}',
        "email": "",
    }[provider]
    suite.pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.cekura_scenario(30, provider="{provider}", agent=1, {fields})
        def test_it(): pass
        """
    )
    suite.run().assert_outcomes(passed=1)
    (post,) = [r for r in suite.emulator.requests if r.method == "POST"]
    assert "name" not in post.body


def test_a_nameless_post_unanswered_at_the_deadline_says_it_cannot_be_looked_up(
    suite: Suite,
) -> None:
    # Answered after 3 s, past the session's 1.5 s: the clean-up still gets the answer.
    suite.emulator.inject("start", "slow", delay_s=3.0)
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, provider="email", agent=1)
        def test_email(): pass
        """
    )
    result = suite.run("--cekura-timeout=1.5")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*Cekura did not answer the request to start this group's runs within the session's "
            "time limit (--cekura-timeout 1.5s). It was not re-sent, so you are not charged "
            "twice; an answer arriving before the session ends still has its calls ended, but "
            "provider 'email''s endpoint takes no result name, so it cannot be looked up*"
        ]
    )
    assert suite.posts() == 1
    assert not [r for r in suite.emulator.requests if r.path.endswith("/results/")]
